"""The dialog's Preview (GIMP's GimpAspectPreview: the whole layer, scaled, with its own
"Preview" toggle), painted by the chosen method at the preview's size on the warm worker,
again whenever an option changes, with a line under it saying what it shows.

For Quality that is its first steps (QUALITY_STEPS, drawn as they form): the whole run takes
minutes; it used to show Fast's picture, whose cross-hatch misled the choice between the two.
It renders in a thread of its own so that the dialog stays responsive; a change while it
renders drops that render and starts another.
"""
import gc
import threading

import gi
gi.require_version('Gimp', '3.0')
from gi.repository import Gimp, GLib, GObject  # noqa: E402

import job  # noqa: E402
import messages  # noqa: E402
import nst_client  # noqa: E402
import options  # noqa: E402
import pixels  # noqa: E402
import probe  # noqa: E402
import progress  # noqa: E402
import settings  # noqa: E402
from nst_client import Cancelled, Failure  # noqa: E402

QUALITY_STEPS = 30                   # the preview of Quality: its first steps...
QUALITY_SECONDS = 0.5                # ...drawn as they form, at most this often


def make(config, image, content):
    """GIMP's preview of the whole layer, its toggle bound to the "preview" argument
    (remembered as GIMP's filters remember theirs), drawn by a DialogPreview, with a line
    under it saying what it shows."""
    _, GimpUi, Gtk = progress.gtk()
    widget = GimpUi.AspectPreview.new_from_drawable(content)
    config.bind_property('preview', widget, 'update',
                         GObject.BindingFlags.BIDIRECTIONAL | GObject.BindingFlags.SYNC_CREATE)
    label = Gtk.Label(xalign=0.0, yalign=0.0)
    label.set_line_wrap(True)
    label.set_max_width_chars(28)
    label.get_style_context().add_class('dim-label')
    renderer = DialogPreview(widget, label, config, image, content)
    renderer.handlers = [config.connect('notify::' + name, lambda *_: widget.invalidate())
                         for name in options.PREVIEW_OPTIONS]
    renderer.handlers.append(config.connect('notify::method',
                                            lambda *_: GLib.idle_add(renderer.describe)))
    renderer.describe()
    return renderer


class DialogPreview:
    """Renders the preview on a worker (see the module's text) and says what it shows."""

    def __init__(self, preview, label, config, image, content):
        self.preview, self.label = preview, label
        self.config, self.image, self.content = config, image, content
        self.busy, self.again, self.closed, self.channel = False, False, False, None
        self.count, self.handlers = 0, []
        preview.connect('invalidated', lambda *_: self.request())
        # GIMP's aspect preview fills itself black when its toggle is off: the layer as it is
        preview.connect('notify::update', lambda *_: GLib.idle_add(self.original))
        preview.connect('notify::update', lambda *_: GLib.idle_add(self.describe))
        preview.get_area().connect_after('size-allocate',
                                         lambda *_: GLib.idle_add(self.original))

    def describe(self, step=None):
        """The line under the preview: what it shows (and, while it paints, how far)."""
        if not self.closed:
            self.label.set_text(messages.preview_note(
                self.config.get_property('method'), self.preview.get_update(),
                QUALITY_STEPS, step))
        return False

    def original(self):
        if self.closed or self.preview.get_update() or not self.content.is_valid():
            return False
        w, h = self.preview.get_size()
        if w > 0 and h > 0:
            data = pixels.read(self.content, w, h)[2]
            self.preview.get_area().draw(0, 0, w, h, Gimp.ImageType.RGBA_IMAGE, data, w * 4)
        return False

    def request(self):
        if self.closed or not self.preview.get_update():
            return
        if self.busy:
            self.again = True                 # the render in progress stops at its next poll
            return
        try:
            job = self._write()
        except Failure as e:
            probe.log('dialog preview: %s' % messages.said(e))
            return
        if job is not None:
            self.busy = True
            threading.Thread(target=self._work, args=job, daemon=True).start()

    def _write(self):
        """The job at the preview's size, written here: GIMP's calls belong to this thread."""
        config = settings.load()
        args, styles = options.arguments(self.config)
        if not styles and not (args['method'] == 'trained' and args['trained_model']):
            return None
        w, h = self.preview.get_size()
        args['size'] = 0                      # the content is read at the preview's size
        job_options = options.job_options(config, args)
        if args['method'] == 'quality':
            job_options.update(preset='draft', iterations=QUALITY_STEPS,
                               preview_seconds=QUALITY_SECONDS, preview_side=max(w, h))
        # the regions as the run paints them, shrunk as the content is (a Failure, logged,
        # for regions the run would refuse: OK waits for them too)
        masks = job.region_masks(self.content, job.region_plan(self.image, self.config), w, h)
        folder = nst_client.JobFolder(config).__enter__()
        job_path = pixels.write_job(folder, self.content, styles, job_options, (w, h), masks)
        return config, folder, job_path, w, h, args['method']

    def _work(self, config, folder, job_path, w, h, method):
        """The render, in its own thread: the dialog's own calls are queued to GLib's."""
        def poll():
            if self.closed or self.again:
                raise Cancelled()
        result = None
        try:
            self.channel = nst_client.open_channel(config, job_path, poll)
            nst_client.follow(self.channel, config, _Events(self, folder, w, h), poll=poll)
            result = folder.read('result.rgba', w, h)
        except Exception as e:        # noqa: BLE001 - a preview must never end the dialog
            result = e
        finally:
            self.channel = None
            folder.__exit__(None, None, None)
        GLib.idle_add(self._done, result, w, h, method)

    def draw(self, data, pw, ph, w, h):
        """Draw a picture of pw x ph scaled to the preview's w x h (Quality's pictures while
        they form are of the working size, which may differ by a pixel)."""
        if self.closed or self.again or (w, h) != tuple(self.preview.get_size()):
            return False
        if (pw, ph) != (w, h):
            GdkPixbuf = progress.gtk()[0]
            pixbuf = GdkPixbuf.Pixbuf.new_from_bytes(
                GLib.Bytes.new(data), GdkPixbuf.Colorspace.RGB, True, 8, pw, ph, pw * 4)
            pixbuf = pixbuf.scale_simple(w, h, GdkPixbuf.InterpType.BILINEAR)
            data = pixbuf.get_pixels()
            if pixbuf.get_rowstride() != w * 4:
                data = b''.join(data[y * pixbuf.get_rowstride():][:w * 4] for y in range(h))
        self.preview.get_area().draw(0, 0, w, h, Gimp.ImageType.RGBA_IMAGE, bytes(data), w * 4)
        return False

    def _done(self, result, w, h, method):
        self.busy = False
        if self.closed:
            return False
        if isinstance(result, bytes) and not self.again:
            self.draw(result, w, h, w, h)
            self.count += 1
            probe.log('dialog preview %d %dx%d %s %06x' % (self.count, w, h, method,
                                                           probe.digest(result)))
        elif not isinstance(result, (bytes, Cancelled)):
            probe.log('dialog preview failed: %r' % (result,))
        self.describe()
        probe.log('dialog preview says %s' % self.label.get_text())
        if self.again:
            self.again = False
            self.request()
        return False

    def close(self):
        """The dialog is closing: drop a render in progress (the warm worker is then free for
        the run) and let go of the widget, so that GIMP's preview is finalized (it stores its
        toggle through the PDB then) while the plug-in still runs."""
        self.closed = True
        channel = self.channel
        if channel is not None:
            channel.stop(0)
        for handler in self.handlers:
            self.config.disconnect(handler)
        self.handlers, self.preview, self.label = [], None, None
        gc.collect()


class _Events(nst_client.Handler):
    """A render's events, handed to the dialog's thread: how far it is, and Quality's
    picture so far as it forms."""

    def __init__(self, renderer, folder, w, h):
        self.renderer, self.folder, self.size = renderer, folder, (w, h)

    def progress(self, event):
        if isinstance(event.get('step'), int) and isinstance(event.get('total'), int):
            GLib.idle_add(self.renderer.describe, 'step %d/%d' % (event['step'],
                                                                   event['total']))
        return False

    def preview(self, event):
        found = progress.read_preview(self.folder, event)
        if found is not None:
            GLib.idle_add(self.renderer.draw, found[2], found[0], found[1], *self.size)
