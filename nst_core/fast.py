"""Fast method: Magenta's arbitrary-style network in one pass, at the content's own resolution.

- The style predictor turns each style image into a 100-d style vector; several styles blend
  by their weights; ``strength`` interpolates from the content's own style vector (which makes
  the network reproduce the content) to that blend.
- The transformer runs at the working size itself (reflect-padded to a multiple of 4, cropped
  back), not at a fixed 384 px and enlarged.
- Images larger than ``tile_size`` run in tiles. Two things make the tiles seamless:
  every tile normalises with the same instance-norm statistics, recorded once on a whole-image
  pass (at full size up to STATS_SIZE, else downscaled), and every tile is computed with a
  margin wider than the network's receptive field, at offsets on the network's stride grid, so
  the kept centre of a tile is exactly what a whole-image pass with those statistics computes.
  Memory then depends on the tile size, not the image size.
"""
import math
from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F

from . import imageio
from .colour import luminance_transfer, match_histogram
from .device import pick
from .models.magenta import PREDICTOR_SIZE, Magenta
from .progress import Tracker

MARGIN = 64          # px of context around a tile: > the transformer's receptive radius (~54)
STATS_SIZE = 2048    # longest side of the pass that records instance-norm statistics
MIN_SIDE = 16        # smaller inputs are padded up to this (the deepest 3x3 conv needs 2x2)
_NETWORKS = {}       # (model, cache_dir) -> Magenta: load once per process


def load_network(model='auto', cache_dir=None, log=print) -> Magenta:
    """Magenta with real weights: the cached 'magenta' source, or the user's own file."""
    key = (model, str(cache_dir))
    if key not in _NETWORKS:
        from .weights.magenta import load_magenta
        from .weights.user import looks_like_path
        if model not in ('auto', 'magenta') and looks_like_path(model):
            from .weights.cache import torch_load_plain
            state = torch_load_plain(model, hint='it must be a Magenta state dict file')
            log('fast weights: %s' % model)
        else:
            state = load_magenta(cache_dir, log=log)
        _NETWORKS[key] = Magenta(state)
    return _NETWORKS[key]


def predictor_input(image: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """The whole image resized to the predictor's training area (256^2) times scale^2.

    The predictor pools globally, so any aspect ratio works and nothing is cropped away.
    A style_scale above 1 shows it the painting magnified, i.e. with larger strokes.
    """
    h, w = image.shape[-2:]
    k = PREDICTOR_SIZE * scale / math.sqrt(h * w)
    size = (max(MIN_SIDE, round(h * k)), max(MIN_SIDE, round(w * k)))
    return F.interpolate(image, size=size, mode='bilinear', align_corners=False,
                         antialias=True).clamp(0, 1)


def style_vector(net: Magenta, image: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """(1, 100) style vector of a (1, 3, H, W) image in 0..1."""
    return net.predictor(predictor_input(image, scale))


def blend_vectors(vectors: Sequence[torch.Tensor], weights=None) -> torch.Tensor:
    weights = [1.0] * len(vectors) if weights is None else list(weights)
    total = float(sum(weights))
    return sum(v * (w / total) for v, w in zip(vectors, weights))


def target_vector(net, content, styles, weights=None, strength=1.0, style_scale=1.0,
                  report=None) -> torch.Tensor:
    """The blended styles' vector, moved towards the content's own by (1 - strength)."""
    vectors = []
    for style in styles:
        vectors.append(style_vector(net, style, style_scale))
        if report:
            report()
    vec = blend_vectors(vectors, weights)
    if strength < 1.0:
        own = style_vector(net, content)
        vec = strength * vec + (1.0 - strength) * own
        if report:
            report()
    return vec


def pad_to(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Pad bottom/right to (h, w): mirrored where the image is large enough, else repeated."""
    ph, pw = h - x.shape[-2], w - x.shape[-1]
    if ph == 0 and pw == 0:
        return x
    mode = 'reflect' if ph < x.shape[-2] and pw < x.shape[-1] else 'replicate'
    return F.pad(x, (0, pw, 0, ph), mode=mode)


def padded_size(n: int) -> int:
    return max(MIN_SIDE, -(-n // 4) * 4)


def transform(net: Magenta, content: torch.Tensor, vec: torch.Tensor, stats=None):
    """Run the transformer on any size: pad to a multiple of 4, crop back."""
    from .models.magenta import NormStats
    h, w = content.shape[-2:]
    x = pad_to(content, padded_size(h), padded_size(w))
    out = net.transformer(x, vec, NormStats(stats) if stats is not None else None)
    return out[..., :h, :w]


def whole_image_stats(net, content, vec, stats_size=STATS_SIZE):
    """Instance-norm statistics of the whole image, at most stats_size px on its longest side."""
    from .models.magenta import NormStats
    h, w = content.shape[-2:]
    if max(h, w) > stats_size:
        k = stats_size / max(h, w)
        content = F.interpolate(content, size=(max(1, round(h * k)), max(1, round(w * k))),
                                mode='bilinear', align_corners=False, antialias=True)
        h, w = content.shape[-2:]
    x = pad_to(content, padded_size(h), padded_size(w))
    recorder = NormStats()
    net.transformer(x, vec, recorder)
    return recorder.stats


def tile_spans(n: int, core: int, margin: int = MARGIN):
    """[(start, stop, keep_start, keep_stop)] along one axis of padded length n (mult. of 4).

    Kept parts tile [0, n) without overlap; each computed span adds `margin` of context on
    both sides (clipped at the image edge). All bounds are multiples of 4 when n, core and
    margin are, so tiles sit on the transformer's stride grid.
    """
    spans = []
    for keep in range(0, n, core):
        keep_stop = min(n, keep + core)
        spans.append((max(0, keep - margin), min(n, keep_stop + margin), keep, keep_stop))
    return spans


def tile_grid(h: int, w: int, tile_size: int):
    """Tiles for a padded (h, w) image: (y-span, x-span) pairs, or None if one pass will do."""
    if max(h, w) <= tile_size:
        return None
    core = max(4 * MIN_SIDE, (tile_size - 2 * MARGIN) // 4 * 4)
    return [(ys, xs) for ys in tile_spans(h, core) for xs in tile_spans(w, core)]


def stylize_tensor(net: Magenta, content: torch.Tensor, vec: torch.Tensor, *,
                   tile_size: int = 1024, stats_size: int = STATS_SIZE, report=None):
    """Stylised (1, 3, H, W) content; tiled above tile_size with whole-image norm statistics.

    report(step, total) is called after the statistics pass and after each tile.
    """
    h, w = content.shape[-2:]
    ph, pw = padded_size(h), padded_size(w)
    grid = tile_grid(ph, pw, tile_size)
    if grid is None:
        out = transform(net, content, vec)
        if report:
            report(1, 1)
        return out
    stats = whole_image_stats(net, content, vec, stats_size)
    if report:
        report(1, len(grid) + 1)
    x = pad_to(content, ph, pw)
    out = torch.empty_like(x)
    for i, ((y0, y1, ky0, ky1), (x0, x1, kx0, kx1)) in enumerate(grid):
        tile = net.transformer(x[..., y0:y1, x0:x1], vec, _replay(stats))
        out[..., ky0:ky1, kx0:kx1] = tile[..., ky0 - y0:ky1 - y0, kx0 - x0:kx1 - x0]
        if report:
            report(i + 2, len(grid) + 1)
    return out[..., :h, :w]


def _replay(stats):
    from .models.magenta import NormStats
    return NormStats(stats)


def count_steps(h, w, tile_size):
    grid = tile_grid(padded_size(h), padded_size(w), tile_size)
    return 1 if grid is None else len(grid) + 1


def run(net: Magenta, content, styles, *, style_weights=None, strength=1.0, style_scale=1.0,
        preserve_colors='none', size=512, device='cpu', tile_size=1024, callback=None,
        cancel=None) -> torch.Tensor:
    """The fast method on PIL images with a given network; returns (1, 3, H, W) in 0..1."""
    dev = pick(device) if isinstance(device, str) else device
    net = net.to(dev)
    content = imageio.rgb(content)
    content_t = imageio.to_tensor(imageio.resize(content, imageio.working_size(content.size,
                                                                                size)), dev)
    style_ts = [imageio.to_tensor(imageio.rgb(s), dev) for s in styles]
    if preserve_colors == 'histogram':
        style_ts = [match_histogram(s, content_t) for s in style_ts]
    h, w = content_t.shape[-2:]
    n_vec = len(style_ts) + (strength < 1.0)
    steps = count_steps(h, w, tile_size)
    tracker = Tracker([('Reading the style', n_vec, PREDICTOR_SIZE ** 2),
                       ('Stylizing', steps, h * w / steps)], callback, cancel)
    tracker.report(0, 0)
    done = [0]

    def style_done():
        done[0] += 1
        tracker.report(0, done[0])

    with torch.inference_mode():
        vec = target_vector(net, content_t, style_ts, style_weights, strength, style_scale,
                            style_done)
        out = stylize_tensor(net, content_t, vec, tile_size=tile_size,
                             report=lambda step, total: tracker.report(1, step, total=total))
        if preserve_colors == 'luminance':
            out = luminance_transfer(out, content_t)
    return out


def stylize_fast(content, styles, *, style_weights=None, strength=1.0, style_scale=1.0,
                 preserve_colors='none', size=512, device='auto', seed=0, model='auto',
                 cache_dir=None, tile_size=1024, callback=None, cancel=None, log=None,
                 **_quality_only):
    """stylize(method='fast'): see nst_core.stylize for the options. Returns a PIL RGB image.

    The network is deterministic, so `seed` changes nothing; quality-only options (preset,
    iterations, losses, VGG layers, optimiser, init, precision) are ignored.
    """
    log = log or print
    net = load_network(model, cache_dir, log)
    out = run(net, content, styles, style_weights=style_weights, strength=strength,
              style_scale=style_scale, preserve_colors=preserve_colors, size=size,
              device=device, tile_size=tile_size, callback=callback, cancel=cancel)
    return imageio.to_pil(out)


def fast_init(content: torch.Tensor, kw: dict) -> torch.Tensor:
    """Starting image for Quality (init='fast'): the fast result at the content's size.

    content: (1, 3, H, W) in 0..1 on the working device; kw: styles (PIL), style_weights,
    strength, device, cache_dir, plus optionally model, style_scale, log.
    """
    net = load_network(kw.get('fast_model', 'auto'), kw.get('cache_dir'),
                       kw.get('log') or print).to(content.device)
    with torch.inference_mode():
        styles = [imageio.to_tensor(imageio.rgb(s), content.device) for s in kw['styles']]
        vec = target_vector(net, content, styles, kw.get('style_weights'),
                            kw.get('strength', 1.0), kw.get('style_scale', 1.0))
        out = stylize_tensor(net, content, vec, tile_size=kw.get('tile_size', 1024))
    return out.clone()
