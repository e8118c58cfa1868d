"""Running one job of protocol v1 (docs/protocol.md): `python -m nst_core worker JOB.json`,
and the job code the warm worker (server.py) shares with it.

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
import time
import traceback

import nst_protocol as protocol
from .progress import Cancelled

CANCEL_GRACE = 0.4     # seconds a running step may take to notice a cancel
PREVIEW_NAME = 'preview.rgba'
PREVIEW_SIDE = 512


class Cancellation:
    """A threading.Event-like flag set by SIGTERM/SIGINT, end-of-file on a piped stdin or a
    closed connection; `grace` seconds after it is set, on_timeout() runs unless the job has
    finished by then.

    No locks: set() may run in a signal handler, which interrupts the main thread anywhere.
    """

    def __init__(self, on_timeout, grace=CANCEL_GRACE):
        self._event = threading.Event()
        self._on_timeout = on_timeout
        self._grace = grace
        self._finished = False
        self._timer = None

    def is_set(self):
        return self._event.is_set()

    def set(self, *_):
        if self._finished or self._event.is_set():
            return
        self._event.set()
        timer = threading.Timer(self._grace, self._expire)
        timer.daemon = True
        timer.start()
        self._timer = timer

    def finish(self):
        """The job has returned: a later set() does nothing and a pending timeout is off."""
        self._finished = True
        timer = self._timer
        if timer is not None:
            timer.cancel()

    def _expire(self):
        if not self._finished:
            self._on_timeout()

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
    """(stylize() keyword arguments, preview settings) from the job's options."""
    from .api import options
    known = set(options()) - {'callback', 'cancel', 'log', 'style_weights', 'init_image'}
    unknown = set(job.options) - known - set(protocol.WORKER_OPTIONS)
    if unknown:
        raise ValueError('unknown option(s) in job: %s' % ', '.join(sorted(unknown)))
    opts = dict(job.options)
    for name in ('content_layers', 'style_layers', 'style_layer_weights'):
        if isinstance(opts.get(name), list):
            opts[name] = tuple(opts[name])
    seconds = opts.pop('preview_seconds', 0)
    side = opts.pop('preview_side', PREVIEW_SIDE)
    if not protocol.is_seconds(seconds):
        raise ValueError('preview_seconds must be a number of seconds >= 0 (0 = no previews), '
                         'not %r' % (seconds,))
    if not (isinstance(side, int) and not isinstance(side, bool) and side >= 1):
        raise ValueError('preview_side must be a whole number of pixels >= 1, not %r'
                         % (side,))
    return opts, (seconds, side)


class PreviewWriter:
    """The progress callback of a job that asked for previews: at most every `seconds`, the
    picture of a Progress that carries one goes to preview.rgba in the job's folder, then
    a `preview` event. Failing to write one stops previews, not the job."""

    def __init__(self, reporter, folder, seconds, side, clock=time.monotonic):
        self.reporter, self.seconds, self.side, self.clock = reporter, seconds, side, clock
        self.path = os.path.join(folder, PREVIEW_NAME)
        self.last = None        # when the last one was written: the first comes at once
        self.broken = False

    def __call__(self, p):
        self.reporter.progress(p)
        if p.picture is None or self.broken:
            return
        if self.last is not None and self.clock() - self.last < self.seconds:
            return
        from .imageio import rgb
        image = rgb(p.picture(self.side)).convert('RGBA')     # opaque alpha
        try:
            protocol.write_buffer_atomic(self.path, image.tobytes())
        except OSError as e:
            self.broken = True
            print('nst_core: previews stopped: cannot write %s: %s' % (self.path, e),
                  file=sys.stderr)
            return
        # measured from the end of the write: a slow write does not crowd out the work
        self.last = self.clock()
        self.reporter.preview(PREVIEW_NAME, image.width, image.height, p.stage)


def _execute(job, job_path, reporter, cancel, models):
    from .imageio import from_rgba_bytes, with_alpha
    from .api import stylize_with
    opts, (seconds, side) = _options(job)
    callback = reporter.progress if seconds <= 0 else PreviewWriter(
        reporter, os.path.dirname(os.path.abspath(job_path)), seconds, side)
    content = from_rgba_bytes(protocol.read_buffer(job.content), job.content.width,
                              job.content.height)
    styles = [from_rgba_bytes(protocol.read_buffer(s), s.width, s.height) for s in job.styles]
    result = stylize_with(models, content, styles,
                          style_weights=[s.weight for s in job.styles] or None,
                          style_masks=_masks(job.style_masks),
                          painting_masks=_masks([s.painting_mask for s in job.styles]),
                          callback=callback, cancel=cancel, log=reporter.log, **opts)
    if cancel.is_set():
        raise Cancelled()
    protocol.write_buffer_atomic(job.output, with_alpha(result, content))


def _masks(buffers):
    """The job's mask buffers (one byte a pixel) as stylize()'s greyscale images; None for
    none at all, None in place of a style that paints everywhere (all of its painting)."""
    from PIL import Image
    if not buffers or all(b is None for b in buffers):
        return None
    return [None if b is None else Image.frombytes('L', (b.width, b.height),
                                                     protocol.read_buffer(b))
            for b in buffers]


def say_cancelled(reporter):
    # The reader may be gone (that is often why we were cancelled): a broken pipe here must
    # not stop the exit that follows.
    try:
        reporter.error('cancelled', 'cancelled')
    except (OSError, ValueError):
        pass


def execute_job(job_path, reporter, cancel, models=None):
    """Read and run the job at job_path, its events to reporter; the protocol's exit code.
    The one-shot worker and the warm worker both run jobs through here; models: the
    LoadedModels the runner keeps its networks in (default: the process's)."""
    try:
        job = protocol.read_job(job_path)
    except protocol.JobError as e:
        reporter.error('bad_job', str(e))
        return protocol.EXIT_BAD_JOB
    reporter.start()
    try:
        from .loaded import chosen
        _execute(job, job_path, reporter, cancel, chosen(models))
    except protocol.JobError as e:
        reporter.error('bad_input', str(e))
        return protocol.EXIT_FAILED
    except Cancelled:
        say_cancelled(reporter)
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


def run_job_file(job_path):
    """`python -m nst_core worker JOB.json`: one job, its events on stdout."""
    from .reporting import Reporter
    events = _event_stream()
    reporter = Reporter(json_events=True, events=events)

    def give_up():
        say_cancelled(reporter)
        os._exit(protocol.EXIT_CANCELLED)

    cancel = Cancellation(give_up)
    cancel.install()
    return execute_job(job_path, reporter, cancel)
