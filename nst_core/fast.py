"""Fast method: Magenta's arbitrary-style network in one pass, at the content's own resolution.

- The style predictor turns each style image into a 100-d style vector; several styles blend
  by their weights; ``strength`` interpolates from the content's own style vector (which makes
  the network reproduce the content) to that blend.
- The transformer runs at the working size itself (reflect-padded to a multiple of 4, cropped
  back), not at a fixed 384 px and enlarged.
- Images larger than ``tile_size`` run in tiles, and the result is the one-pass result (to
  float rounding), so there can be no seams: every instance norm uses the whole image's
  statistics, and every tile is computed with a margin wider than the receptive field, on the
  network's stride grid (see stylize_tensor). Full-resolution layers never exist whole; what
  does is the input, the output and the quarter/half-resolution features (about 60 bytes
  per pixel instead of about 500 for one pass).
"""
import contextlib
import math
import os
from typing import Sequence

import torch
import torch.nn.functional as F

from . import imageio
from .colour import luminance_transfer, match_histogram
from .device import pick
from .models.magenta import PREDICTOR_SIZE, Magenta
from .progress import Tracker

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
    (Showing it the painting larger or smaller changes how strong the style is, not the
    stroke size - which is why style_scale acts on the content instead: see scaled.)
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


def target_vector(net, content, styles, weights=None, strength=1.0,
                  report=None) -> torch.Tensor:
    """The blended styles' vector, moved towards the content's own by (1 - strength)."""
    vectors = []
    for style in styles:
        vectors.append(style_vector(net, style))
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


def transform(net: Magenta, content: torch.Tensor, vec: torch.Tensor):
    """Run the transformer in one pass on any size: pad to a multiple of 4, crop back."""
    h, w = content.shape[-2:]
    return net.transformer(pad_to(content, padded_size(h), padded_size(w)), vec)[..., :h, :w]


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
    """Runs one stage of the transformer over a source tensor, tile by tile.

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

    def _run(self, fn, src, res, scale, margin, align):
        for (y0, y1, ky0, ky1), (x0, x1, kx0, kx1) in self.spans(src.shape, res, margin, align):
            out = fn(src[..., y0:y1, x0:x1])
            kept = out[..., _at(ky0 - y0, scale):_at(ky1 - y0, scale),
                       _at(kx0 - x0, scale):_at(kx1 - x0, scale)]
            yield kept, (_at(ky0, scale), _at(ky1, scale), _at(kx0, scale), _at(kx1, scale))
            self.report()

    def map(self, fn, src, res, scale, margin, align=1):
        """fn(src) for the whole src, assembled from tiles."""
        out = None
        for kept, (y0, y1, x0, x1) in self._run(fn, src, res, scale, margin, align):
            if out is None:
                size = tuple(_at(n, scale) for n in src.shape[-2:])
                out = kept.new_empty(kept.shape[:2] + size)
            out[..., y0:y1, x0:x1] = kept
        return out

    def stats(self, fn, src, res, scale, margin, align=1):
        """Per-channel (mean, biased variance) of fn(whole src), accumulated over tiles."""
        total = total_sq = 0.0
        count = 0
        for kept, _ in self._run(fn, src, res, scale, margin, align):
            kept = kept.double()
            total = total + kept.sum((0, 2, 3))
            total_sq = total_sq + kept.square().sum((0, 2, 3))
            count += kept.shape[0] * kept.shape[2] * kept.shape[3]
        mean = total / count
        var = (total_sq / count - mean.square()).clamp_min(0)
        return mean.float().view(1, -1, 1, 1), var.float().view(1, -1, 1, 1)


def _at(n, scale):
    return int(round(n * scale))


# Context each tiled stage needs, in its source's pixels (receptive radius, rounded up):
ENCODER_MARGIN = 16   # 9x9 conv (4 px) + stride-2 3x3 convs (1 + 2 px) at full resolution
UP1_MARGIN = 2        # 3x3 conv at half resolution = 0.5 quarter-resolution px
DECODER_MARGIN = 4    # 3x3 (1 px) + 9x9 (4 px) convs at full resolution = 2.5 half-res px


def _plan(h, w, tile_size):
    """(tile side, number of tile steps) for a padded h x w image, or None if untiled."""
    if max(h, w) <= tile_size:
        return None
    tile = max(4 * MIN_SIDE, tile_size // 4 * 4 - 2 * ENCODER_MARGIN)
    probe = Tiles(tile)
    steps = (len(probe.spans((h, w), 1, ENCODER_MARGIN, 4))          # encoder
             + 2 * len(probe.spans((h // 4, w // 4), 0.25, UP1_MARGIN, 1))   # stats, map
             + 3 * len(probe.spans((h // 2, w // 2), 0.5, DECODER_MARGIN, 1)))  # 2 stats, map
    return tile, steps


def count_steps(h, w, tile_size):
    """Progress steps of stylize_tensor for an h x w image (1 when untiled)."""
    plan = _plan(padded_size(h), padded_size(w), tile_size)
    return 1 if plan is None else plan[1]


def stylize_tensor(net: Magenta, content: torch.Tensor, vec: torch.Tensor, *,
                   tile_size: int = 1024, report=None):
    """Stylised (1, 3, H, W) content; above tile_size px it runs in tiles, exactly.

    Exactly: every instance norm uses the whole image's statistics, as in one pass. The 10
    norms of the residual blocks work at quarter resolution, which is run whole (32 channels
    on 1/16 of the pixels: 2 bytes per image pixel); the decoder's 3 norms get their
    statistics from sweeps over tiles (sums in float64), so no full-resolution layer ever
    exists whole. report(step, total) is called after each tile.
    """
    h, w = content.shape[-2:]
    ph, pw = padded_size(h), padded_size(w)
    x = pad_to(content, ph, pw)
    t = net.transformer
    plan = _plan(ph, pw, tile_size)
    if plan is None:
        out = t(x, vec)
        if report:
            report(1, 1)
        return out[..., :h, :w]
    done = [0]

    def tick():
        done[0] += 1
        if report:
            report(done[0], plan[1])

    tiles = Tiles(plan[0], tick)
    quarter = t.residuals(tiles.map(t.encode, x, 1, 0.25, ENCODER_MARGIN, 4), vec)
    del x

    def up1(s):
        return t.decoder_conv(0, s)

    def up2(s):
        return t.decoder_conv(1, s)

    def last(s):
        return t.decoder_conv(2, t.decoder_out(1, up2(s), vec, s2))

    s1 = tiles.stats(up1, quarter, 0.25, 2, UP1_MARGIN)
    half = tiles.map(lambda s: t.decoder_out(0, up1(s), vec, s1), quarter, 0.25, 2, UP1_MARGIN)
    del quarter
    s2 = tiles.stats(up2, half, 0.5, 2, DECODER_MARGIN)
    s3 = tiles.stats(last, half, 0.5, 2, DECODER_MARGIN)
    out = tiles.map(lambda s: t.decoder_out(2, last(s), vec, s3), half, 0.5, 2, DECODER_MARGIN)
    return out[..., :h, :w]


def scaled_size(content, style_scale):
    """(h, w) the transformer runs at: the content's size divided by style_scale."""
    h, w = content.shape[-2:]
    return max(1, round(h / style_scale)), max(1, round(w / style_scale))


def scaled(net, content, vec, style_scale=1.0, **kwargs):
    """stylize_tensor at the content's size / style_scale, resized back to the content's size.

    The network paints strokes of a fixed size in pixels, so strokes s times larger relative
    to the picture need the picture s times smaller (softer for s > 1, like any enlargement;
    s < 1 gives finer strokes at s^-2 the cost).
    """
    h, w = content.shape[-2:]
    sh, sw = scaled_size(content, style_scale)
    if (sh, sw) == (h, w):
        return stylize_tensor(net, content, vec, **kwargs)
    small = F.interpolate(content, size=(sh, sw), mode='bicubic', align_corners=False,
                          antialias=sh < h).clamp(0, 1)
    out = stylize_tensor(net, small, vec, **kwargs)
    return F.interpolate(out, size=(h, w), mode='bicubic', align_corners=False,
                         antialias=sh > h).clamp(0, 1)


def fade_to_content(out, content, strength):
    """Below strength 0.5, blend the picture back towards the content itself.

    With the content's own style vector the network is close to, not equal to, the identity
    (mean difference 0.11 on a photo), so vector interpolation alone cannot honour
    "0 keeps the photo". Above 0.5 the interpolated vector alone sets the strength.
    """
    return torch.lerp(content, out, min(1.0, 2.0 * strength))


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
    h, w = scaled_size(content_t, style_scale)
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
        vec = target_vector(net, content_t, style_ts, style_weights, strength, style_done)
        out = scaled(net, content_t, vec, style_scale, tile_size=tile_size,
                     report=lambda step, total: tracker.report(1, step, total=total))
        out = fade_to_content(out, content_t, strength)
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
    with idle_threads():
        out = run(net, content, styles, style_weights=style_weights, strength=strength,
                  style_scale=style_scale, preserve_colors=preserve_colors, size=size,
                  device=device, tile_size=tile_size, callback=callback, cancel=cancel)
    return imageio.to_pil(out)


@contextlib.contextmanager
def idle_threads():
    """Use only the CPU threads other processes leave idle, for the duration.

    This network is many small ops, each ending in a barrier where all threads wait; when
    another process holds one of the cores, every barrier waits for a descheduled thread.
    Measured here with the other core busy: 1 thread took 1.1-1.6 s at 1024 px where 2 took
    2.1-3.1 s. On an idle machine nothing changes.
    """
    before = torch.get_num_threads()
    try:
        busy = os.getloadavg()[0]
    except (AttributeError, OSError):        # Windows has no load average
        busy = 0.0
    idle = int((os.cpu_count() or 1) - busy + 0.5)
    torch.set_num_threads(max(1, min(before, idle)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


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
                            kw.get('strength', 1.0))
        out = scaled(net, content, vec, kw.get('style_scale', 1.0),
                     tile_size=kw.get('tile_size', 1024))
    # a plain (not inference-mode, not channels-last) tensor: the optimiser views it flat
    return out.contiguous(memory_format=torch.contiguous_format).clone()
