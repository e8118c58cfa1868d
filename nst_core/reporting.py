"""Where progress goes: JSON events (worker protocol) or a one-line progress bar on a terminal
(which shows no pictures: Progress.picture is for the worker's previews)."""
import sys
import threading
import time

from nst_protocol import PROTOCOL_VERSION, encode_event, format_eta


class Reporter:
    def __init__(self, json_events=False, quiet=False, events=None, terminal=None):
        self.json = json_events
        self.quiet = quiet
        self.events = events or sys.stdout
        self.terminal = terminal or sys.stderr
        self.bar = not json_events and not quiet and self.terminal.isatty()
        self.start_time = time.monotonic()
        self._lock = threading.Lock()

    def _emit(self, event, **fields):
        with self._lock:
            self.events.write(encode_event(event, **fields) + '\n')
            self.events.flush()

    def _say(self, text):
        with self._lock:
            self.terminal.write(text)
            self.terminal.flush()

    def start(self, **fields):
        if self.json:
            import os
            from . import __version__
            self._emit('start', protocol=PROTOCOL_VERSION, pid=os.getpid(), version=__version__,
                       **fields)

    def progress(self, p):
        if self.json:
            self._emit('progress', fraction=round(p.fraction, 4), stage=p.stage, step=p.step,
                       total=p.total, elapsed=round(p.elapsed, 2),
                       eta=None if p.eta is None else round(p.eta, 1),
                       loss=None if p.loss is None else float('%.5g' % p.loss))
        elif self.bar:
            filled = int(p.fraction * 30)
            self._say('\r[%s%s] %3d%%  %s, step %d/%d  %s   ' % (
                '#' * filled, '.' * (30 - filled), p.fraction * 100, p.stage, p.step, p.total,
                format_eta(p.eta)))

    def preview(self, path, width, height, stage):
        """The picture so far is in `path` (relative to the job's folder); JSON only: a
        terminal shows no pictures."""
        if self.json:
            self._emit('preview', path=path, width=width, height=height, stage=stage)

    def log(self, message):
        if self.json:
            self._emit('log', message=message)
        elif not self.quiet:
            self._say(('\n' if self.bar else '') + message + '\n')

    def done(self, output, width, height):
        elapsed = round(time.monotonic() - self.start_time, 2)
        if self.json:
            self._emit('done', output=output, width=width, height=height, elapsed=elapsed)
        elif not self.quiet:
            self._say('%swrote %s (%dx%d) in %.1f s\n' % ('\n' if self.bar else '', output,
                                                          width, height, elapsed))

    def error(self, kind, message, **fields):
        """fields: extra figures for programs (protocol: readers ignore what they do not
        know), e.g. a memory refusal's largest_side."""
        if self.json:
            self._emit('error', kind=kind, message=message, **fields)
        self._say('%snst_core: error: %s\n' % ('\n' if self.bar else '', message))
