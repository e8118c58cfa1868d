"""A run as the user sees it: the worker's events on GIMP's progress bar (stage, step, time
left), and Quality's picture while it forms in a window of its own."""
import time

import gi
gi.require_version('Gimp', '3.0')
from gi.repository import Gimp, GLib  # noqa: E402

import nst_protocol  # noqa: E402
import nst_client  # noqa: E402
import probe  # noqa: E402
import messages  # noqa: E402
from messages import _  # noqa: E402

INTERVAL = 0.1                       # at most this often a progress call into GIMP
PREVIEW_SIDE = 512                   # the preview window's longest side


def gtk():
    """GdkPixbuf, GimpUi and Gtk, loaded when a window is made: batch runs have none."""
    gi.require_version('GimpUi', '3.0')
    gi.require_version('Gtk', '3.0')
    gi.require_version('GdkPixbuf', '2.0')
    from gi.repository import GdkPixbuf, GimpUi, Gtk
    return GdkPixbuf, GimpUi, Gtk


def read_preview(folder, event):
    """(w, h, RGBA bytes) of a preview event's picture; None where it was replaced by a newer
    one of another size meanwhile."""
    try:
        w, h = int(event['width']), int(event['height'])
        return w, h, folder.read(event.get('path', 'preview.rgba'), w, h)
    except (nst_client.Failure, KeyError, TypeError, ValueError):
        return None


class ProgressBar(nst_client.Handler):
    """Worker events -> GIMP's progress bar, throttled, with stage text and ETA; previews to
    the preview window, if any."""

    def __init__(self, cancel_after):
        self.last = 0.0
        self.count = 0
        self.cancel_after = cancel_after
        self.window = None
        Gimp.progress_init(_('Neural Style: starting the worker...'))

    def preview(self, event):
        if self.window is not None:
            self.window.show(event)

    def started(self, event):
        self.text(messages.loading())

    def text(self, message):
        Gimp.progress_set_text(_('Neural Style: %s') % message)
        probe.log('text %s' % message)

    def progress(self, event):
        self.count += 1
        now = time.monotonic()
        if now - self.last >= INTERVAL or event['fraction'] >= 1.0:
            self.last = now
            parts = [str(event.get('stage') or _('working'))]
            if isinstance(event.get('step'), int) and isinstance(event.get('total'), int):
                parts.append(_('step %d/%d') % (event['step'], event['total']))
            eta = nst_protocol.format_eta(event.get('eta'))
            if eta:
                parts.append(eta)
            Gimp.progress_set_text(_('Neural Style: %s') % ', '.join(parts))
            Gimp.progress_update(float(event['fraction']))
            probe.log('progress %.4f %s' % (event['fraction'], ', '.join(parts)))
        return bool(self.cancel_after) and self.count >= self.cancel_after


class PreviewWindow:
    """Quality's picture while it forms (interactive runs), in a window of its own drawn from
    the worker's preview events. Not a temporary layer: GIMP's Cancel kills the plug-in at any
    moment, and a layer drawn with undo frozen would stay behind in the image; the window goes
    with the plug-in, and the image and its undo history only ever see the result."""

    def __init__(self, folder, title):
        GdkPixbuf, GimpUi, Gtk = gtk()
        self.GdkPixbuf, self.folder, self.count = GdkPixbuf, folder, 0
        self.window = Gtk.Window(title=_('%s: preview') % title)
        self.window.set_default_size(PREVIEW_SIDE, PREVIEW_SIDE * 3 // 4)
        box = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=6, border_width=6)
        self.picture, self.stage = Gtk.Image(), Gtk.Label(xalign=0.0)
        self.stage.get_style_context().add_class('dim-label')
        box.pack_start(self.picture, True, True, 0)
        box.pack_start(self.stage, False, False, 0)
        self.window.add(box)
        GimpUi.window_set_transient(self.window)

    def show(self, event):
        found = read_preview(self.folder, event)
        if found is None:
            return
        w, h, data = found
        pixbuf = self.GdkPixbuf.Pixbuf.new_from_bytes(
            GLib.Bytes.new(data), self.GdkPixbuf.Colorspace.RGB, True, 8, w, h, w * 4)
        k = PREVIEW_SIDE / max(w, h)      # the coarse scales' pictures are smaller: same size
        if k != 1:
            pixbuf = pixbuf.scale_simple(max(1, round(w * k)), max(1, round(h * k)),
                                         self.GdkPixbuf.InterpType.BILINEAR)
        self.picture.set_from_pixbuf(pixbuf)
        self.stage.set_text(str(event.get('stage') or ''))
        if not self.count:
            self.window.show_all()
        self.count += 1
        probe.log('preview %d %dx%d %06x' % (self.count, w, h, probe.digest(data)))

    def close(self):
        self.window.destroy()
        probe.log('preview window closed after %d pictures' % self.count)
