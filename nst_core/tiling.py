"""Overlapping tiles: how a picture too large to optimise whole is cut, and sewn back.

Quality's memory grows with the pixels it optimises at once (VGG's activations and their
gradients, L-BFGS's history), so the scales that do not fit run tile by tile, row by row, on
one canvas: each tile starts from what its finished neighbours (left, above) made of the
overlap, handing over to the unrefined picture across it (start()), and is pasted back with a weight that rises linearly from 0 at its edge to 1 one
overlap inside it on those sides, and is 1 elsewhere. So a tile's left and top edges, where
VGG sees zero padding and the optimiser paints edge artefacts, never show, its right and
bottom edges are repainted by the next tiles (to whom they are interior), and neighbours hand
over gradually. (Ramps on every side would leave the unrefined start showing through in the
middle of each overlap: a band of the coarser scale along every border.)
"""
import math
from dataclasses import dataclass
from typing import Optional, List, Tuple

import torch


@dataclass(frozen=True)
class Box:
    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def pixels(self) -> int:
        return self.width * self.height

    def crop(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor[..., self.y0:self.y1, self.x0:self.x1]


def spans(length: int, tile: int, overlap: int) -> List[Tuple[int, int]]:
    """(start, end) of the fewest equal spans of at most `tile` covering 0..length, each
    overlapping the next by at least `overlap`."""
    if length <= tile:
        return [(0, length)]
    if overlap >= tile:
        raise ValueError('overlap %d must be smaller than the tile %d' % (overlap, tile))
    n = math.ceil((length - overlap) / (tile - overlap))
    size = min(length, math.ceil((length - overlap) / n) + overlap)
    starts = [round(i * (length - size) / (n - 1)) for i in range(n)]
    return [(s, s + size) for s in starts]


def grid(width: int, height: int, tile: int, overlap: int) -> List[Box]:
    """Tiles of at most tile x tile covering a width x height picture, row by row."""
    return [Box(x0, y0, x1, y1) for y0, y1 in spans(height, tile, overlap)
            for x0, x1 in spans(width, tile, overlap)]


def _ramp(size: int, after_neighbour: bool, overlap: int) -> torch.Tensor:
    pos = torch.arange(size, dtype=torch.float32) + 0.5
    return (pos / overlap).clamp(max=1) if after_neighbour else torch.ones(size)


def feather(box: Box, overlap: int) -> torch.Tensor:
    """(1, 1, h, w) weights of `box`: ramps over its overlap with the tiles before it."""
    wx = _ramp(box.width, box.x0 > 0, overlap)
    wy = _ramp(box.height, box.y0 > 0, overlap)
    return (wy[:, None] * wx[None, :])[None, None]


def paste(canvas: torch.Tensor, tile: torch.Tensor, box: Box, overlap: int) -> None:
    """Feather `tile` into `canvas` (1, C, H, W) at `box`, in place (tiles in grid order)."""
    weight = feather(box, overlap).to(canvas)
    region = box.crop(canvas)
    region.mul_(1 - weight).add_(tile * weight)


def start(canvas: torch.Tensor, fresh: torch.Tensor, box: Box, overlap: int) -> torch.Tensor:
    """The picture a tile's optimisation starts from: the canvas (its finished neighbours)
    at the tile's edge, handing over to `fresh` (the scale's own start) across the overlap.

    The neighbours' results end at the overlap's far side, where the canvas steps from a
    refined picture to an unrefined one. A tile's few steps do not remove a step they start
    with, and there it has the full weight: it stayed as a seam (1.3-1.7x the mean step
    between columns elsewhere, bench_quality_sizes at 2048 px).
    """
    return torch.lerp(box.crop(canvas), box.crop(fresh), feather(box, overlap).to(canvas))


def centre(image: torch.Tensor, side: int, weight: Optional[torch.Tensor] = None):
    """The `side` x `side` window of `image` (..., H, W) around its middle, or around the
    centre of mass of `weight` (..., H, W) where given (a mask: where what matters is); all
    of a side that fits. Returns the window and the same window of `weight`."""
    h, w = image.shape[-2:]
    cy, cx = h / 2, w / 2
    if weight is not None and weight.sum() > 0:
        m = weight.float().reshape(h, w)
        cy = float((m.sum(1) * torch.arange(h, dtype=m.dtype, device=m.device)).sum() / m.sum())
        cx = float((m.sum(0) * torch.arange(w, dtype=m.dtype, device=m.device)).sum() / m.sum())
    top = min(max(0, round(cy - side / 2)), max(0, h - side))
    left = min(max(0, round(cx - side / 2)), max(0, w - side))
    window = (..., slice(top, top + side), slice(left, left + side))
    return image[window], None if weight is None else weight[window]
