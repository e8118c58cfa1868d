"""VGG features, the service Quality and training share: the network loaded from its
weights, its feature maps in the precision the device computes fastest, and the blended Gram
matrices of the paintings (the style targets).
"""
import contextlib
import logging
import os
from typing import Dict, List, Optional, Sequence

import torch
from torch.nn import functional as F

from . import loaded, losses, regions
from .models.vgg import VGGFeatures, tiny_random

# VGG halves the image 4 times before relu5_1: a side under 16 px leaves a layer no pixels
# (a crash), and near 16 px the deepest layers see one or two pixels. Smaller images (1x1
# layers, 8000x16 strips, coarse scales of thin images) are padded up to this, then cropped.
MIN_SIDE = 32


_log = logging.getLogger(__name__)


def load_features(model: str, layers: Sequence[str], *, pooling='max', cache_dir=None,
                  log=None, models=None) -> VGGFeatures:
    """VGG truncated at the deepest of `layers`, from the weights named by `model`; float32,
    on the CPU, contiguous, frozen (every caller moves it where it computes). Kept in
    `models` (default: the process's), with the last line its load logged, which each later
    job's log repeats (it says which weights the job used).

    'tiny' is a thin randomly initialised VGG-16 for plumbing tests: it makes pictures of no
    artistic value but exercises every code path in seconds without any download.
    """
    log = log or _log.info
    key = _features_key(model, layers, pooling, cache_dir)
    lines = []

    def load():
        def note(message):
            lines.append(message)
            log(message)
        return _load_features(model, layers, pooling, cache_dir, note), lines
    vgg, said = loaded.chosen(models).get(key and ('vgg',) + key, load)
    if said and said is not lines:
        log(said[-1])
    # a job may have left it on the GPU or channels-last: a hit hands out what a load would
    return vgg.to(device=torch.device('cpu'), dtype=torch.float32,
                  memory_format=torch.contiguous_format).requires_grad_(False).eval()


def _features_key(model, layers, pooling, cache_dir):
    """The cache key; None (not cached) for a user's file that cannot be read (the load then
    says why). The file's size and time are in it: a file rewritten in place is read again."""
    key = (model, str(cache_dir), tuple(layers), pooling)
    if model in ('auto', 'tiny'):
        return key
    from .weights import SOURCES
    from .weights.user import looks_like_path
    if model in SOURCES or not looks_like_path(model):
        return key
    try:
        st = os.stat(os.path.expanduser(model))
    except OSError:
        return None
    return key + (st.st_size, st.st_mtime_ns)


def _load_features(model, layers, pooling, cache_dir, log):
    if model == 'tiny':
        return tiny_random('vgg16', layers, pooling=pooling)
    from .weights import load_vgg
    arch, state = load_vgg(model, cache_dir=cache_dir, log=log)
    return VGGFeatures(arch, layers, state, pooling=pooling)


def use_bf16(precision: str, device: torch.device) -> bool:
    if precision != 'auto':
        return precision == 'bf16'
    return device.type == 'cpu' and torch.cpu._is_avx512_bf16_supported()


def layout(bf16: bool):
    # oneDNN's bf16 convolutions run channels-last natively; in NCHW each layer reorders
    # its input and output (8 L-BFGS steps at 512x384: 17.5 s vs 19.8 s a whole process).
    return torch.channels_last if bf16 else torch.contiguous_format


def features(vgg, image, bf16) -> Dict[str, torch.Tensor]:
    ctx = torch.autocast('cpu', dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    with ctx:
        # kept in the compute dtype: the losses cast what they need (a float copy of every
        # tapped map, and its backward, cost a sixth of a step at 512 px)
        return vgg(image.contiguous(memory_format=layout(bf16)))


def style_grams(vgg, styles: List[torch.Tensor], blend: Sequence[float], layers, bf16,
                tile: Optional[int] = None, masks=None) -> Dict[str, torch.Tensor]:
    """The blended Gram matrix of each style layer; styles larger than `tile` are read in
    cells (a Gram matrix is a sum over pixels), so a 4096 px painting needs no more memory
    than a tile. masks: per style, None or (1, 1, h, w) at its size: the part of the
    painting to read (regions.py)."""
    grams = each_style_grams(vgg, styles, layers, bf16, tile, masks)
    return {n: losses.blend_grams([g[n] for g in grams], blend) for n in layers}


def each_style_grams(vgg, styles, layers, bf16, tile=None, masks=None):
    """[{layer: Gram}] for each painting (inside its mask, if any)."""
    masks = masks if masks is not None else [None] * len(styles)
    vgg.to(memory_format=layout(bf16))
    with torch.no_grad():
        return [_cell_grams(vgg, s, layers, bf16, tile, m) for s, m in zip(styles, masks)]


# Cells start on multiples of VGG's deepest stride, so every layer's grid cuts them cleanly,
# and each is read with this margin of real pixels around it, which covers the deep layers'
# view of the cell's edge well enough for a statistic over all of it.
CELL_ALIGN, CELL_MARGIN = 16, 32


def _cell_grams(vgg, style, layers, bf16, tile, mask=None):
    h, w = style.shape[-2:]
    if tile is None or max(h, w) <= tile:
        feats = features(vgg, style, bf16)
        if mask is not None:
            return {n: regions.guided_gram(feats[n], mask) for n in layers}
        return {n: losses.gram(feats[n]) for n in layers}
    cell = max(CELL_ALIGN, (tile - 2 * CELL_MARGIN) // CELL_ALIGN * CELL_ALIGN)
    stride = {n: 2 ** sum(1 for m in vgg.names[:vgg.names.index(n)] if m.startswith('pool'))
              for n in layers}
    sums, counts = {}, {}
    for y in range(0, h, cell):
        for x in range(0, w, cell):
            y0, x0 = max(0, y - CELL_MARGIN), max(0, x - CELL_MARGIN)
            y1, x1 = min(h, y + cell + CELL_MARGIN), min(w, x + cell + CELL_MARGIN)
            y2, x2 = min(h, y + cell), min(w, x + cell)
            feats = features(vgg, style[..., y0:y1, x0:x1], bf16)
            for n in layers:
                k = stride[n]       # the cell's own part of this layer's grid
                inner = feats[n][..., (y - y0) // k:(y2 - y0) // k,
                                 (x - x0) // k:(x2 - x0) // k].float()
                if mask is None:
                    flat = inner.reshape(inner.shape[0], inner.shape[1], -1)
                    part, count = flat @ flat.transpose(1, 2), flat.shape[-1]
                else:
                    part, count = regions.guided_sums(inner, mask[..., y:y2, x:x2])
                sums[n] = sums.get(n, 0) + part
                counts[n] = counts.get(n, 0) + count
    return {n: sums[n] / (sums[n].shape[-1] * counts[n]) for n in layers}


def pad_min(x: torch.Tensor, side: int = MIN_SIDE) -> torch.Tensor:
    """Pad bottom/right with repeated edge pixels until both sides are >= side."""
    h, w = x.shape[-2:]
    if h >= side and w >= side:
        return x
    return F.pad(x, (0, max(0, side - w), 0, max(0, side - h)), mode='replicate')


def repeat_min(x: torch.Tensor, side: int = MIN_SIDE) -> torch.Tensor:
    """Tile a style image until both sides are >= side: a Gram matrix does not change when
    the picture repeats (edge padding would weight the border's colours instead)."""
    h, w = x.shape[-2:]
    return x.repeat(1, 1, -(-side // h), -(-side // w)) if min(h, w) < side else x
