"""Pixels in and out of GIMP: a layer read by GEGL into the protocol's buffers, a channel read
over a layer as a style's mask, the job's buffers written from them, and a picture written
into a layer."""
import gi
gi.require_version('Gimp', '3.0')
gi.require_version('Gegl', '0.4')
from gi.repository import Gegl  # noqa: E402

import nst_protocol  # noqa: E402
import probe  # noqa: E402
import style_regions  # noqa: E402

FORMAT = "R'G'B'A u8"          # the protocol's buffers: non-linear sRGB, straight alpha
MASK_FORMAT = 'Y u8'           # a mask: one byte a pixel, as GIMP reads its masks


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


def read_mask(channel, layer, width=None, height=None):
    """The channel's pixels over the layer's rectangle (the layer's offsets in the image;
    0 outside the image), one byte a pixel, at the layer's size or scaled by GEGL to width x
    height as read() scales the layer."""
    w, h = layer.get_width(), layer.get_height()
    _, x, y = layer.get_offsets()
    scale = width / w if width else 1.0
    if width:
        w, h = width, height
    rect = Gegl.Rectangle.new(int(round(x * scale)), int(round(y * scale)), w, h)
    return bytes(channel.get_buffer().get(rect, scale, MASK_FORMAT, Gegl.AbyssPolicy.NONE))


def region_masks(content, regions, width=None, height=None):
    """The style masks of a plan (style_regions.plan) over the content layer, at its size or
    width x height; None when every style paints everywhere."""
    return style_regions.masks(regions, lambda channel: read_mask(channel, content, width,
                                                                   height))


def write(layer, data):
    """RGBA bytes of the layer's own size into it."""
    w, h = layer.get_width(), layer.get_height()
    buf = layer.get_buffer()
    buf.set(Gegl.Rectangle.new(0, 0, w, h), FORMAT, data)
    buf.flush()


def write_job(folder, content, styles, options, content_size=(None, None), masks=None):
    """Write the buffers and job.json into the JobFolder; styles: [(drawable, weight)];
    content_size: the content scaled to this (the dialog's preview), else its own size;
    masks: region_masks() at that size, or None. Paintings go at the size the protocol says
    the method reads them at."""
    content_buffer = folder.buffer('content.rgba', *read(content, *content_size))
    probe.kill('reading')
    method = options['method']
    w, h = content_buffer.width, content_buffer.height
    style_masks = None if masks is None else [
        None if mask is None else folder.mask('mask%d.grey' % i, w, h, mask)
        for i, mask in enumerate(masks)]
    return folder.write_job(content_buffer, [
        folder.buffer('style%d.rgba' % i, *read(d, side=nst_protocol.style_side(
            method, d.get_width(), d.get_height())), weight=wt)
        for i, (d, wt) in enumerate(styles)], options, style_masks)
