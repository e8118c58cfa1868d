"""GIMP's own layer (and channel) chooser of the dialog, made to show what is chosen."""
import gi
gi.require_version('Gimp', '3.0')
gi.require_version('Gegl', '0.4')
from gi.repository import Gegl, Gimp, GLib  # noqa: E402

import pixels  # noqa: E402
from messages import _  # noqa: E402


class StyleChooser:
    """GIMP's own layer chooser of the dialog (GimpDrawableChooser in 3.0, GimpItemChooser in
    3.2), made to show what is chosen: both draw the thumbnail only when the layer is set,
    at the size their preview has then (none before the dialog is shown: a blank button on
    every opening), and never show the layer's name (the button says "Browse..."). Here the
    button's label shows the name and its preview the layer itself, drawn again whenever it
    is resized or another layer is picked."""

    def __init__(self, chooser, Gtk, Pango, empty, tooltip=None):
        """empty: the label while none is chosen; tooltip: '... "%s" ... "%s"' with the item's
        and its image's names (a layer's by default)."""
        self.chooser, self.thumbnail, self.empty = chooser, None, empty
        self.tooltip = tooltip or _('Layer "%s" of image "%s"')
        self.prop = 'item' if chooser.find_property('item') else 'drawable'
        buttons = [c for c in chooser.get_children() if isinstance(c, Gtk.Button)]
        box = buttons[0].get_child() if buttons else None
        kids = box.get_children() if isinstance(box, Gtk.Container) else []
        self.title = next((k for k in kids if isinstance(k, Gtk.Label)), None)
        frame = next((k for k in kids if isinstance(k, Gtk.Frame)), None)
        self.preview = frame.get_child() if frame is not None else None
        if self.title is not None:
            self.title.set_ellipsize(Pango.EllipsizeMode.END)
            self.title.set_max_width_chars(30)
        chooser.connect('notify::' + self.prop, lambda *_: GLib.idle_add(self.show))
        if self.preview is not None:
            self.preview.connect('size-allocate', lambda *_: GLib.idle_add(self.draw))
        self.show()

    def item(self):
        item = self.chooser.get_property(self.prop)
        return item if item is not None and item.is_valid() else None

    def label(self):
        return self.title.get_text() if self.title is not None else ''

    def show(self):
        item = self.item()
        if self.title is not None:
            self.title.set_text(item.get_name() if item is not None else self.empty)
            if item is not None:
                self.chooser.set_tooltip_text(self.tooltip % (
                    item.get_name(), item.get_image().get_name()))
        self.draw()
        return False

    def draw(self):
        item, area = self.item(), self.preview
        if item is None or area is None:
            return False
        box = area.get_allocation()
        w, h = item.get_width(), item.get_height()
        if box.width < 4 or box.height < 4 or w < 1 or h < 1:
            return False
        scale = min(box.width / w, box.height / h)
        tw, th = max(1, int(w * scale)), max(1, int(h * scale))
        # the layer's own pixels, scaled by GEGL: GIMP's thumbnail of a small layer in a large
        # image is mostly the transparent canvas around it (a checkerboard)
        data = item.get_buffer().get(Gegl.Rectangle.new(0, 0, tw, th), scale, pixels.FORMAT,
                                     Gegl.AbyssPolicy.CLAMP)
        area.draw((box.width - tw) // 2, (box.height - th) // 2, tw, th,
                  Gimp.ImageType.RGBA_IMAGE, bytes(data), tw * 4)
        self.thumbnail = (tw, th)
        return False
