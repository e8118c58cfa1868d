"""Styles by region: where on the photo each style paints, and which part of each painting
it is taken from.

A style mask is a greyscale image at the content's size, white where its style paints; a
painting mask, at its painting's size, white where the style is read. None means everywhere
(all of the painting). Soft masks blend. REST ('rest') instead of a style mask means where
no other style's mask is (with two styles and one mask of the sky: the ground).

The masks become shares: at each pixel, style i's share is its mask times its blend weight,
over the sum of those of every style there, times how much of the pixel any mask covers
(at most 1). So hard complementary masks split the picture whatever the weights; where
masks overlap (soft edges too) the weights blend them; where no mask reaches the photo
stays itself. Quality matches
each region's statistics to its own painting (guided Gram matrices: quality.py); Fast and
Trained paint the picture once per style and mix the results by the shares (fast.py).
"""
import math
from typing import List, Optional, Sequence

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F

from . import imageio

GREY_MODES = ('1', 'L', 'I', 'I;16', 'I;16B', 'I;16L', 'F')
REST = 'rest'
# A share below this (a pixel in a thousand) leaves a region out of a tile's loss: its
# statistics would be of a handful of pixels.
MIN_SHARE = 1e-3


class MaskError(ValueError):
    """A mask that cannot say where: wrong size, not greyscale, black everywhere, or more
    masks than styles."""


def given(masks) -> bool:
    """Whether any mask restricts anything (None and a list of Nones mean everywhere)."""
    return masks is not None and any(m is not None for m in masks)


def check(masks, sizes: Sequence, what: str, count_what: str) -> None:
    """MaskError unless `masks` holds at most one mask per size in `sizes` (None allowed), each
    greyscale, of its size and not black everywhere. what: 'style mask', 'painting mask'."""
    if masks is None:
        return
    if len(masks) > len(sizes):
        raise MaskError('%d %ss given for %d %s' % (len(masks), what, len(sizes), count_what))
    drawn = [m for m in masks if m is not None and not _is_rest(m)]
    for i, (mask, size) in enumerate(zip(masks, sizes), 1):
        if mask is None:
            continue
        if _is_rest(mask) and what == 'style mask':
            if not drawn:
                raise MaskError("style mask %d is 'rest', but no other style has a mask: "
                                'the rest of nothing is everywhere (give no mask)' % i)
            if len(drawn) + sum(map(_is_rest, masks)) < len(sizes):
                raise MaskError("style mask %d is 'rest', but another style paints "
                                'everywhere (no mask): there is no rest' % i)
            continue
        if not isinstance(mask, Image.Image):
            raise MaskError('%s %d is not an image' % (what, i))
        if mask.mode not in GREY_MODES:
            raise MaskError('%s %d is %s: a mask must be greyscale (white = here)'
                            % (what, i, mask.mode))
        if tuple(mask.size) != tuple(size):
            raise MaskError('%s %d is %dx%d, not %dx%d as its picture'
                            % (what, i, *mask.size, *size))
        if not to_array(mask).any():
            raise MaskError('%s %d is black everywhere: its style would be painted nowhere'
                            % (what, i) if what == 'style mask' else
                            '%s %d is black everywhere: there is no painting to read'
                            % (what, i))
    if drawn and any(map(_is_rest, masks)) and what == 'style mask' \
            and sum(to_array(m) for m in drawn).min() >= 1.0:
        raise MaskError("the other styles' masks cover everything: the 'rest' is nowhere")


def _is_rest(mask):
    return isinstance(mask, str) and mask == REST


def to_array(mask: Image.Image) -> np.ndarray:
    """A greyscale mask as float32 0..1 (16-bit and float images by their own range)."""
    if mask.mode in ('1', 'L'):
        return np.asarray(mask.convert('L'), dtype=np.float32) / 255.0
    return np.asarray(imageio.rgb(mask).convert('L'), dtype=np.float32) / 255.0


def to_tensor(mask: Optional[Image.Image], wh, device) -> Optional[torch.Tensor]:
    """(1, 1, h, w) 0..1 at wh (w, h), area-averaged; None (everywhere) and REST stay."""
    if mask is None or _is_rest(mask):
        return mask
    t = torch.from_numpy(to_array(mask).copy())[None, None]
    return resize(t, (wh[1], wh[0])).to(device)


def resize(share: torch.Tensor, hw) -> torch.Tensor:
    """A share map at another size: each pixel the mean of what it covers (enlarged:
    bilinear), so a hard edge stays where it is and no share leaves 0..1."""
    hw = tuple(int(v) for v in hw)
    if tuple(share.shape[-2:]) == hw:
        return share
    if hw[0] <= share.shape[-2] and hw[1] <= share.shape[-1]:
        return F.adaptive_avg_pool2d(share, hw)
    return F.interpolate(share, size=hw, mode='bilinear', align_corners=False).clamp(0, 1)


def shares(masks: Sequence[Optional[torch.Tensor]], weights: Sequence[float],
           hw) -> torch.Tensor:
    """(K, 1, h, w): each style's share of each pixel (see the module's doc), from masks
    (1, 1, h, w), None (everywhere) or REST, and blend weights."""
    ref = next(m for m in masks if m is not None and not _is_rest(m))
    ones = torch.ones(1, 1, *hw, dtype=ref.dtype, device=ref.device)
    drawn = [ones if m is None else resize(m, hw) for m in masks if not _is_rest(m)]
    rest = 1 - torch.cat(drawn).sum(0, keepdim=True).clamp(max=1.0)
    ms = torch.cat([rest if _is_rest(m) else ones if m is None else resize(m, hw)
                    for m in masks])
    w = torch.tensor([float(x) for x in weights], dtype=ms.dtype, device=ms.device)
    weighted = ms * w.view(-1, 1, 1, 1)
    total = weighted.sum(0, keepdim=True)
    cover = ms.sum(0, keepdim=True).clamp(max=1.0)
    return torch.where(total > 0, weighted / total.clamp_min(1e-12), 0.0) * cover


def padded(masks, count) -> List:
    """`masks` as a list of `count` (None for the styles it names no mask for)."""
    masks = list(masks or [])
    return masks + [None] * (count - len(masks))


def at_layer(share: torch.Tensor, hw) -> torch.Tensor:
    """A share map (1, 1, H, W) on the grid of a VGG layer of size hw: the mean over each
    layer pixel's block of image pixels (VGG's pools halve, rounding down, so the blocks are
    powers of two from the top-left corner, whatever part of a picture `share` is cut from)."""
    h, w = (int(v) for v in hw)
    k = 2 ** max(0, round(math.log2(max(1.0, share.shape[-2] / max(1, h)))))
    m = F.avg_pool2d(share, k, k) if k > 1 else share
    m = m[..., :h, :w]
    if m.shape[-2:] != (h, w):          # a layer padded past the picture: nothing of it there
        m = F.pad(m, (0, w - m.shape[-1], 0, h - m.shape[-2]))
    return m


def guided_sums(features: torch.Tensor, share: torch.Tensor):
    """(sum over pixels of share * f f^T, sum of share): a region's Gram matrix before it is
    divided, from features (1, C, h, w) and the region's share (1, 1, H, W) on the image."""
    m = at_layer(share, features.shape[-2:])
    flat = features.float().flatten(2)
    wflat = flat * m.flatten(2)
    return wflat @ flat.transpose(1, 2), m.sum()


def guided_gram(features: torch.Tensor, share: torch.Tensor) -> torch.Tensor:
    """The Gram matrix of the features inside a region: each pixel counted by its share
    (brought to the layer's grid), normalised by the region's area and the channels as
    losses.gram is, so a region's statistics do not depend on its size (Gatys et al. 2017,
    "Controlling Perceptual Factors in Neural Style Transfer"). Differentiable."""
    from .losses import gram
    h, w = features.shape[-2:]
    m = at_layer(share, (h, w))
    area = m.sum().clamp_min(1e-12)
    # gram() is F F^T / (C h w); with F scaled by sqrt(share) it is the share-weighted sum
    weighted = features * m.sqrt().to(features.dtype)
    if features.is_contiguous(memory_format=torch.channels_last):
        weighted = weighted.contiguous(memory_format=torch.channels_last)
    return gram(weighted) * (h * w / area)
