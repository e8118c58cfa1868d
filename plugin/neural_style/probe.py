"""The test probe: what the real-GIMP tests (tests/gimp/) see of a run, and where they stop it.
Every function here does nothing unless the test environment is set; product code calls
only these named points, and nothing else of the plug-in reads the test environment.

With NEURAL_STYLE_TEST_DIR=dir in GIMP's environment the plug-in mirrors progress, the
worker's pid, the dialog's state and the outcome into dir/plugin.log; if dir/cancel-after
holds N, the N-th progress event counts as a press on Cancel (batch mode has no Cancel
button); if dir/kill-at names a point of the run (kill), the plug-in SIGKILLs itself there
as GIMP's Cancel button does. Files, because a test script inside GIMP cannot change the
environment of the plug-ins GIMP starts.
"""
import os
import signal
import time

import nst_client

ENV = 'NEURAL_STYLE_TEST_DIR'
_kill_point = []        # dir/kill-at, once read: kill() is called for every worker event


def enabled():
    return bool(os.environ.get(ENV))


def log(message):
    folder = os.environ.get(ENV)
    if folder:
        with open(os.path.join(folder, 'plugin.log'), 'a', encoding='utf-8') as f:
            f.write(message + '\n')


def cancel_after():
    """N from dir/cancel-after: the N-th progress event cancels the run (0: none does)."""
    try:
        with open(os.path.join(os.environ[ENV], 'cancel-after'), encoding='utf-8') as f:
            return int(f.read().strip() or 0)
    except (KeyError, OSError, ValueError):
        return 0


def _kill_at():
    if not _kill_point:
        try:
            with open(os.path.join(os.environ[ENV], 'kill-at'), encoding='utf-8') as f:
                _kill_point.append(f.read().strip())
        except (KeyError, OSError):
            _kill_point.append(None)
    return _kill_point[0]


def kill(point):
    """Die at this point exactly as GIMP's Cancel kills a plug-in (gimp_plug_in_close: SIGKILL
    to the plug-in's process group when it leads one of its own, else to the plug-in), if
    dir/kill-at names it. Points: reading, worker-started, start (the worker's first event:
    it is loading torch and the model), progress N (the N-th progress event), writing-back,
    before-insert, after-insert."""
    if point != _kill_at():
        return
    log('killing myself at %s' % point)
    pid = os.getpid()
    if os.getpgid(0) != os.getpgid(os.getppid()):     # GIMP, our parent, is not in our group
        os.kill(-pid, signal.SIGKILL)
    os.kill(pid, signal.SIGKILL)


class Hooks(nst_client.Hooks):
    """log and kill, where the worker client calls them."""

    def log(self, message):
        log(message)

    def kill(self, point):
        kill(point)


HOOKS = Hooks()


def digest(data):
    """A cheap fingerprint of a picture for the test log: did the preview change?"""
    return sum(data[::4093]) & 0xffffff


class Stopwatch:
    """Phase times for the test log (bench/bench_plugin_overhead.py reads them)."""

    def __init__(self):
        self.last = time.monotonic()

    def lap(self, phase):
        now = time.monotonic()
        log('timing %s %.3f' % (phase, now - self.last))
        self.last = now


class DialogProbe:
    """What the dialog shows, into the test log (a 'dialog-shown' line a second after it
    appears, a 'dialog-state' line after every change): the GUI tests read it back."""

    def __init__(self, dialog, config, style, ok_button, notes, preview):
        self.on = enabled()
        self.dialog, self.config, self.style, self.ok = dialog, config, style, ok_button
        self.notes, self.preview = notes, preview

    def report(self, kind):
        if not self.on or self.preview.closed:
            return False
        log('%s %s' % (kind, self._state()))
        return False

    def _state(self):
        from gi.repository import GObject
        dialog, config = self.dialog, self.config
        widget = {n: dialog.get_widget(n, GObject.TYPE_NONE) for n in
                  ('preset', 'size', 'strength', 'style-scale', 'style-layer',
                   'more-styles-expander')}
        scale = widget['style-scale'].get_range().get_adjustment()
        strength = widget['strength'].get_range().get_adjustment()
        layer = config.get_property('style-layer')
        display = dialog.get_display()
        monitor = display.get_monitor_at_window(dialog.get_window()) \
            if dialog.get_window() is not None else display.get_monitor(0)
        return (
            'style-layer=%s chooser-label=%s thumbnail=%s method=%s seed=%d size=%d fit=%s '
            'preset-sensitive=%s size-sensitive=%s strength-widget=%s strength-range=%g..%g '
            'style-scale-widget=%s '
            'style-scale-position=%.2f style-layer-sensitive=%s more-styles-sensitive=%s '
            'more-styles-expanded=%s ok-sensitive=%s model-note=%s runs-on=%s preview=%s '
            'height=%d min-height=%d screen-height=%d regions=%s region-note=%s '
            'preview-label=%s note=%s' % (
                layer.get_name() if layer else None, self.style.label(),
                '%dx%d' % self.style.thumbnail if self.style.thumbnail else None,
                config.get_property('method'), config.get_property('seed'),
                config.get_property('size'), config.get_property('fit'),
                widget['preset'].is_sensitive(), widget['size'].is_sensitive(),
                type(widget['strength']).__name__, strength.get_lower(), strength.get_upper(),
                type(widget['style-scale']).__name__,
                (scale.get_value() - scale.get_lower()) / (scale.get_upper() - scale.get_lower()),
                widget['style-layer'].is_sensitive(),
                widget['more-styles-expander'].is_sensitive(),
                widget['more-styles-expander'].get_expanded(), self.ok.is_sensitive(),
                self.notes['model-note'].get_visible(), self.notes['runs-on-note'].get_text(),
                config.get_property('preview'),
                dialog.get_allocated_height(), dialog.get_preferred_height()[0],
                monitor.get_workarea().height if monitor is not None else 0,
                self._regions(),
                self.notes['region-note'].get_text()
                if self.notes['region-note'].get_visible() else '',
                self.preview.label.get_text(), self.notes['size-note'].get_text()))

    def _regions(self):
        """Per style slot: its region, its channel's name (- for none) and whether the
        channel's chooser is active, as 'channel/sky/True;rest/-/False;...'."""
        from gi.repository import GObject
        from options import REGION_SLOTS
        out = []
        for region, channel in REGION_SLOTS.values():
            item = self.config.get_property(channel)
            out.append('%s/%s/%s' % (
                self.config.get_property(region),
                item.get_name() if item is not None and item.is_valid() else '-',
                self.dialog.get_widget(channel, GObject.TYPE_NONE).is_sensitive()))
        return ';'.join(out)
