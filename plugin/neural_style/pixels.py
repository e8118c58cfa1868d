"""Pixels in and out of GIMP: a layer read by GEGL into the protocol's buffers, the job's
buffers written from the layers, and a picture written into a layer."""
import gi
gi.require_version('Gimp', '3.0')
gi.require_version('Gegl', '0.4')
from gi.repository import Gegl  # noqa: E402

import nst_protocol  # noqa: E402
import probe  # noqa: E402

FORMAT = "R'G'B'A u8"          # the protocol's buffers: non-linear sRGB, straight alpha


def read(drawable, width=None, height=None, side=None):
    """(w, h, RGBA bytes) of the layer, scaled by GEGL to width x height, or to a longest
    side of at most `side`; at its own size by default."""
    w, h = drawable.get_width(), drawable.get_height()
    scale = 1.0
    if width:
        scale = width / w
    elif side and max(w, h) > side:
        scale = side / max(w, h)
    if scale != 1.0:
        w, h = width or max(1, int(w * scale)), height or max(1, int(h * scale))
    data = drawable.get_buffer().get(Gegl.Rectangle.new(0, 0, w, h), scale, FORMAT,
                                     Gegl.AbyssPolicy.CLAMP)
    return w, h, bytes(data)


def write(layer, data):
    """RGBA bytes of the layer's own size into it."""
    w, h = layer.get_width(), layer.get_height()
    buf = layer.get_buffer()
    buf.set(Gegl.Rectangle.new(0, 0, w, h), FORMAT, data)
    buf.flush()


def write_job(folder, content, styles, options, content_size=(None, None)):
    """Write the buffers and job.json into the JobFolder; styles: [(drawable, weight)];
    content_size: the content scaled to this (the dialog's preview), else its own size.
    Paintings go at the size the protocol says the method reads them at."""
    content_buffer = folder.buffer('content.rgba', *read(content, *content_size))
    probe.kill('reading')
    method = options['method']
    return folder.write_job(content_buffer, [
        folder.buffer('style%d.rgba' % i, *read(d, side=nst_protocol.style_side(
            method, d.get_width(), d.get_height())), weight=wt)
        for i, (d, wt) in enumerate(styles)], options)
