"""`python -m nst_core worker JOB.json`: one job of protocol v1 (docs/protocol.md).

Cancellation must take effect within a second even in the middle of a long optimiser step,
so a cancel sets an event (checked between steps) and arms a watchdog that ends the process
if the step does not return in time. The result is renamed into place as the last act, so
the watchdog can never leave half a result behind.
"""
import os
import signal
import stat
import sys
import threading
import traceback

from . import protocol
from .progress import Cancelled

CANCEL_GRACE = 0.4     # seconds a running step may take to notice a cancel


class Cancellation:
    """A threading.Event-like flag set by SIGTERM/SIGINT or end-of-file on a piped stdin."""

    def __init__(self, on_timeout):
        self._event = threading.Event()
        self._on_timeout = on_timeout

    def is_set(self):
        return self._event.is_set()

    def set(self, *_):
        if not self._event.is_set():
            self._event.set()
            timer = threading.Timer(CANCEL_GRACE, self._on_timeout)
            timer.daemon = True
            timer.start()

    def install(self):
        signal.signal(signal.SIGTERM, self.set)
        signal.signal(signal.SIGINT, self.set)
        if _stdin_is_pipe():
            threading.Thread(target=self._watch_stdin, daemon=True).start()

    def _watch_stdin(self):
        try:
            while os.read(0, 4096):
                pass
        except OSError:
            pass
        self.set()


def _stdin_is_pipe():
    try:
        return stat.S_ISFIFO(os.fstat(0).st_mode)
    except OSError:
        return False


def _event_stream():
    """A private duplicate of stdout for events; fd 1 itself is pointed at stderr so that
    stray prints from libraries cannot corrupt the event stream."""
    events = os.fdopen(os.dup(1), 'w', encoding='utf-8', buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return events


def _options(job):
    from .stylize import options
    known = set(options()) - {'callback', 'cancel', 'log', 'style_weights', 'init_image'}
    unknown = set(job.options) - known - set(protocol.WORKER_OPTIONS)
    if unknown:
        raise ValueError('unknown option(s) in job: %s' % ', '.join(sorted(unknown)))
    opts = dict(job.options)
    for name in ('content_layers', 'style_layers', 'style_layer_weights'):
        if isinstance(opts.get(name), list):
            opts[name] = tuple(opts[name])
    return opts


def _execute(job, reporter, cancel):
    from .imageio import from_rgba_bytes, with_alpha
    from .stylize import stylize
    opts = _options(job)
    content = from_rgba_bytes(protocol.read_buffer(job.content), job.content.width,
                              job.content.height)
    styles = [from_rgba_bytes(protocol.read_buffer(s), s.width, s.height) for s in job.styles]
    result = stylize(content, styles, style_weights=[s.weight for s in job.styles] or None,
                     callback=reporter.progress, cancel=cancel, log=reporter.log, **opts)
    if cancel.is_set():
        raise Cancelled()
    protocol.write_buffer_atomic(job.output, with_alpha(result, content))


def _say_cancelled(reporter):
    # The reader may be gone (that is often why we were cancelled): a broken pipe here must
    # not stop the exit that follows.
    try:
        reporter.error('cancelled', 'cancelled')
    except (OSError, ValueError):
        pass


def run(job_path):
    from .reporting import Reporter
    events = _event_stream()
    reporter = Reporter(json_events=True, events=events)

    def give_up():
        _say_cancelled(reporter)
        os._exit(protocol.EXIT_CANCELLED)

    cancel = Cancellation(give_up)
    cancel.install()
    try:
        job = protocol.read_job(job_path)
    except protocol.JobError as e:
        reporter.error('bad_job', str(e))
        return protocol.EXIT_BAD_JOB
    reporter.start()
    try:
        _execute(job, reporter, cancel)
    except protocol.JobError as e:
        reporter.error('bad_input', str(e))
        return protocol.EXIT_FAILED
    except Cancelled:
        _say_cancelled(reporter)
        return protocol.EXIT_CANCELLED
    except BaseException as e:  # noqa: BLE001 - the plug-in must always get an event
        from .errors import classify, details
        kind, message = classify(e)
        if kind == 'internal':
            traceback.print_exc()
        reporter.error(kind, message, **details(e))
        return protocol.EXIT_FAILED
    reporter.done(job.output, job.content.width, job.content.height)
    return protocol.EXIT_OK
