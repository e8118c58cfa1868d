"""A picture painted on a small canvas, enlarged to the photo's size with the photo's detail.

Fast paints on a canvas of a fixed number of pixels (see fast.py), so its strokes keep their
size relative to the picture; enlarging that canvas alone gives the peer's soft picture. The
detail finer than the canvas can hold comes from the photo itself:

    out = enlarge(painted) + gain * (Y - enlarge(y))

Y is the photo's luminance at the output size and y the canvas-sized photo's, so the bracket
is exactly the luminance detail the canvas lost (a Laplacian band). gain (per channel) is how
strongly the painting follows the photo's luminance around each canvas pixel: the slope of a
local least-squares fit of painted against y over a small window, as in a guided filter (He
et al. 2010). Where the network kept the photo's shapes (a roof line, a cable) the detail
comes back as strongly, in the painting's colours; where it painted over them (a sky turned
into swirls) the gain is small and the photo's texture stays out. Where the photo is flat on
the canvas the fit has nothing to go on, and it falls back to the picture-wide slope.

Everything at the output size runs in bands of rows, each exactly the rows a whole pass
gives (resample.py), so memory holds the input, the output and one band.
"""
import torch
import torch.nn.functional as F

from .resample import Resize

RADIUS = 2            # fit window: 5x5 canvas pixels, about 1.5 % of the picture's side
EPS = 1e-3            # luminance variance (std 0.03) below which the window's fit gives way
MAX_GAIN = 2.0        # a steeper fit is the painting's own texture, not the photo's shapes
BAND_PIXELS = 1 << 20     # output pixels per band


def luminance(x):
    w = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype, device=x.device)
    return (x * w.view(1, 3, 1, 1)).sum(1, keepdim=True)


def _box(x, r):
    return F.avg_pool2d(F.pad(x, (r, r, r, r), mode='replicate'), 2 * r + 1, 1)


def local_gain(y, painted, radius=RADIUS, eps=EPS):
    """(B, 3, h, w): per channel, the local slope of painted against the luminance y."""
    mean_y, mean_p = _box(y, radius), _box(painted, radius)
    cov = _box(y * painted, radius) - mean_y * mean_p
    var = _box(y * y, radius) - mean_y * mean_y
    yc = y - y.mean((2, 3), keepdim=True)
    pc = painted - painted.mean((2, 3), keepdim=True)
    overall = ((yc * pc).mean((2, 3), keepdim=True)
               / yc.square().mean((2, 3), keepdim=True).clamp_min(1e-6)).clamp_min(0)
    gain = (cov + eps * overall) / (var.clamp_min(0) + eps)
    return _box(gain, radius).clamp(-MAX_GAIN, MAX_GAIN)


def band_rows(width, band_pixels=BAND_PIXELS):
    return max(1, band_pixels // max(1, width))


def enlarge(content, small, painted, amount=1.0, finish=None, report=None,
            band_pixels=BAND_PIXELS, mix=None):
    """(1, 3, H, W): painted (the canvas, small's size) at content's size, detail restored.

    content: the photo at the output size; small: the photo on the canvas (what the network
    painted from). amount scales the detail (0: the canvas enlarged as painted).
    finish(band, content_band) -> band runs on each band (strength, colours); report(done,
    total) after each band. painted may be a list of canvases (one per style region) with
    mix(bands, y0, y1, content_band) -> band making one band of them, before finish.
    """
    H, W = content.shape[-2:]
    h, w = small.shape[-2:]
    resize = Resize((h, w), (H, W))
    # the network's channels-last: pooling 3x slower
    canvases = [p.contiguous() for p in (painted if mix is not None else [painted])]
    k = len(canvases)
    maps = list(canvases)
    detail = amount != 0 and (H > h or W > w)      # shrinking the canvas: nothing is lost
    if detail:
        y = luminance(small)
        maps += [y] + [amount * local_gain(y, p) for p in canvases]
    maps = resize.cols(torch.cat(maps, 1))
    out = content.new_empty(content.shape)
    rows = band_rows(W, band_pixels)
    total = -(-H // rows)
    for i, y0 in enumerate(range(0, H, rows)):
        y1 = min(H, y0 + rows)
        band = resize.rows(maps, y0, y1)
        photo = content[..., y0:y1, :]
        pictures = [band[:, 3 * i:3 * i + 3] for i in range(k)]
        if detail:
            lost = luminance(photo) - band[:, 3 * k:3 * k + 1]
            pictures = [p + band[:, 3 * k + 1 + 3 * i:3 * k + 4 + 3 * i] * lost
                        for i, p in enumerate(pictures)]
        picture = pictures[0] if mix is None else mix(pictures, y0, y1, photo)
        if finish is not None:
            picture = finish(picture, photo)
        out[..., y0:y1, :] = picture.clamp(0, 1)
        if report:
            report(i + 1, total)
    return out


def count_bands(h, w, band_pixels=BAND_PIXELS):
    rows = band_rows(w, band_pixels)
    return -(-h // rows)
