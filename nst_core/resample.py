"""Separable image resizing on (B, C, H, W) tensors, whole or a band of output rows at a time.

Why not F.interpolate: Fast enlarges a small painted canvas to the output size in bands of
rows (so a 4096 px picture never needs more than its input and output whole), and a band
must be the rows a whole-image resize gives. Here each output row is a fixed weighted sum of
a few source rows (weights precomputed per axis, as PIL does), so a band is computed as in a
whole pass, whatever its bounds (equal to float rounding: the sums are matrix products).

The kernel is Lanczos-3, as PIL's LANCZOS, both ways: shrinking, it is the sharpest common
anti-aliasing filter (torch's antialiased bilinear blurs away the brushwork the style
predictor reads, see fast.py); enlarging the painted canvas, it keeps the strokes' contrast
(Catmull-Rom cubic gave a grey style ratio of 0.366 on the shared pairs at 1024 px, Lanczos
0.349; the crops look alike at full size, with no more ringing in Lanczos's).
"""
import math

import torch

# Output rows / columns per matrix product: each product covers only the sources nearby, and
# blocks this size keep the products few and large.
ROW_BLOCK = 64
COL_BLOCK = 256
SUPPORT = 3.0     # Lanczos-3's radius, in source pixels when enlarging


def lanczos3(x):
    x = x.abs()
    out = torch.sinc(x) * torch.sinc(x / 3)
    return torch.where(x < 3, out, torch.zeros_like(out))


def taps(n_src, n_dst):
    """(index, weight): (n_dst, k) source indices and weights for one axis.

    Pixel centres are aligned as in PIL and F.interpolate(align_corners=False). When
    shrinking, the kernel is stretched by the ratio (anti-aliasing). Taps past the edge are
    dropped and the rest renormalised (as PIL does), so edges are not over-weighted.
    """
    support = SUPPORT
    scale = n_src / n_dst
    stretch = max(scale, 1.0)
    centre = (torch.arange(n_dst, dtype=torch.float64) + 0.5) * scale - 0.5
    width = int(math.ceil(2 * support * stretch)) + 1
    first = torch.floor(centre - support * stretch).long() + 1
    index = first[:, None] + torch.arange(width)
    weight = lanczos3((index.double() - centre[:, None]) / stretch)
    inside = (index >= 0) & (index < n_src)
    weight = torch.where(inside, weight, torch.zeros_like(weight))
    weight = weight / weight.sum(1, keepdim=True)
    return index.clamp(0, n_src - 1), weight


class Axis:
    """One axis's resize as dense matrices over bands of output positions."""

    def __init__(self, n_src, n_dst):
        self.n_src, self.n_dst = n_src, n_dst
        self.index, self.weight = taps(n_src, n_dst)

    def band(self, d0, d1, device=None, dtype=torch.float32):
        """(matrix (d1-d0, hi-lo), lo, hi): output positions d0..d1 from sources lo..hi."""
        index, weight = self.index[d0:d1], self.weight[d0:d1]
        used = weight != 0
        lo, hi = int(index[used].min()), int(index[used].max()) + 1
        m = torch.zeros(d1 - d0, hi - lo, dtype=torch.float64)
        m.scatter_add_(1, (index - lo).clamp(0, hi - lo - 1), weight)   # unused taps: weight 0
        return m.to(device=device, dtype=dtype), lo, hi


class Resize:
    """Resizes (B, C, h, w) tensors to (H, W), whole or by bands of output rows.

    resize(x) = rows(cols(x), 0, H): `cols` resizes the width of every row, `rows` makes
    output rows y0..y1 from the column-resized rows (a band costs only its own rows).
    """

    def __init__(self, src_hw, dst_hw):
        self.src, self.dst = tuple(src_hw), tuple(dst_hw)
        self.y = Axis(self.src[0], self.dst[0])
        self.x = Axis(self.src[1], self.dst[1])
        self._blocks = {}

    def _col_blocks(self, device, dtype):
        """[(c0, c1, matrix, lo, hi)] for blocks of output columns, built once per device."""
        key = (device, dtype)
        if key not in self._blocks:
            n = self.dst[1]
            self._blocks[key] = [(c0, min(n, c0 + COL_BLOCK))
                                 + self.x.band(c0, min(n, c0 + COL_BLOCK), device, dtype)
                                 for c0 in range(0, n, COL_BLOCK)]
        return self._blocks[key]

    def cols(self, x):
        """x with every row resized to the output width."""
        if self.src[1] == self.dst[1]:
            return x
        out = x.new_empty(x.shape[:-1] + (self.dst[1],))
        for c0, c1, m, lo, hi in self._col_blocks(x.device, x.dtype):
            out[..., c0:c1] = x[..., lo:hi] @ m.T
        return out

    def rows(self, x, y0, y1):
        """Output rows y0..y1 from x's rows (of any width: before or after `cols`)."""
        if self.src[0] == self.dst[0]:
            return x[..., y0:y1, :]
        if y1 - y0 <= ROW_BLOCK:
            m, lo, hi = self.y.band(y0, y1, x.device, x.dtype)
            return m @ x[..., lo:hi, :]
        # block by block: one product for many rows would be dense over all their sources
        out = x.new_empty(x.shape[:-2] + (y1 - y0, x.shape[-1]))
        for b0 in range(y0, y1, ROW_BLOCK):
            b1 = min(y1, b0 + ROW_BLOCK)
            out[..., b0 - y0:b1 - y0, :] = self.rows(x, b0, b1)
        return out

    def __call__(self, x):
        if self.src == self.dst:
            return x
        if self.dst[0] >= self.src[0]:
            return self.rows(self.cols(x), 0, self.dst[0])
        # shrinking rows: that pass first, so the column pass runs on fewer rows
        return self.cols(self.rows(x, 0, self.dst[0]))


def resize(x, hw):
    """x (B, C, h, w) resized to hw = (H, W) with Lanczos-3."""
    if tuple(x.shape[-2:]) == tuple(hw):
        return x
    return Resize(x.shape[-2:], tuple(hw))(x)
