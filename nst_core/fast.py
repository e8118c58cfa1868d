"""Fast method: Magenta's arbitrary-style network in one pass, on a canvas of fixed size.

- The style predictor turns each style image into a 100-d style vector (the average over
  256x256 tiles covering the painting, as it was trained); several styles blend by their
  weights; ``strength`` interpolates from the content's own style vector (which makes the
  network reproduce the content) to that blend.
- The network paints strokes of a fixed size in pixels, so it paints on a canvas of a fixed
  number of pixels (canvas.CANVAS_AREA, divided by style_scale squared), whatever the output size:
  the strokes keep their size relative to the picture at 256 px and at 4096 px alike.
  detail.py then enlarges the canvas to the output size and puts back the photo's own
  detail finer than the canvas holds, in bands of rows (memory: input, output, one band).
- The canvas is painted inside a mirrored margin (no light and dark bands along its edges)
  and, where it is enlarged, at all 16 positions on the network's stride grid, mixed in
  small irregular patches (no lattice of dots at 100 %): see MARGIN and PHASES.
- A canvas larger than ``tile_size`` (style_scale well below 1) runs in tiles, and the result
  is the one-pass result (to float rounding), so there can be no seams: every instance norm
  uses the whole canvas's statistics, and every tile is computed with a margin wider than the
  receptive field, on the network's stride grid (see stylize_tensor).
"""
import hashlib
import logging
from typing import Sequence

import torch
import torch.nn.functional as F

from . import detail, imageio, loaded, regions
from .colour import luminance_transfer, match_histogram
from .device import pick
from .canvas import MIN_SIDE, Tiles, canvas_size, check_detail, pad_to, padded_size
from .device import idle_threads
from .models.arbitrary_style import PREDICTOR_SIZE, ArbitraryStyleNet
from .progress import Tracker
from .resample import resize

MAX_LONG = 4 * PREDICTOR_SIZE   # predictor input's long side at most (long strips shrink more)
MAX_TILES = 16                  # tiles per axis at most (they sample a very long strip)
_log = logging.getLogger(__name__)


def network_key(model='auto', cache_dir=None):
    """Names the network's weights in a LoadedModels, and with them its style vectors."""
    return ('fast network', model, str(cache_dir))


def load_network(model='auto', cache_dir=None, log=None, models=None) -> ArbitraryStyleNet:
    """The network with real weights: the cached 'magenta' source, or the user's own file; kept
    in `models` (default: the process's)."""
    return loaded.chosen(models).get(network_key(model, cache_dir),
                                     lambda: _read_network(model, cache_dir, log or _log.info))


def _read_network(model, cache_dir, log):
    from .weights.magenta import load_magenta
    from .weights.user import looks_like_path
    if model not in ('auto', 'magenta') and looks_like_path(model):
        from .weights.cache import torch_load_plain
        state = torch_load_plain(model, hint='it must be a Magenta state dict file')
        log('fast weights: %s' % model)
    else:
        state = load_magenta(cache_dir, log=log)
    return ArbitraryStyleNet(state)


def predictor_input(image: torch.Tensor) -> torch.Tensor:
    """(n, 3, s, s): the image's short side resized to the predictor's 256 px (Lanczos), and
    square tiles of that side covering the whole image, evenly overlapping.

    The predictor was trained on 256x256 crops, and it reads brushwork from fine detail: on
    the shared pairs, the whole painting shrunk to 256^2 px with torch's antialiased
    bilinear filter gave a grey style ratio of 0.48, Lanczos tiles 0.36. An image longer
    than 4:1 is shrunk to MAX_LONG instead, and sampled by at most MAX_TILES tiles an axis.
    """
    h, w = image.shape[-2:]
    k = min(PREDICTOR_SIZE / min(h, w), MAX_LONG / max(h, w))
    hw = (max(1, round(h * k)), max(1, round(w * k)))
    x = resize(image, hw).clamp(0, 1)
    side = min(hw)
    ys, xs = (_starts(n, side) for n in hw)
    return torch.cat([x[..., y:y + side, x0:x0 + side] for y in ys for x0 in xs])


def _starts(n, side):
    """Start positions of tiles of `side` covering n, as evenly spread as pixels allow."""
    count = min(MAX_TILES, -(-n // side))
    if count == 1:
        return [0]
    return [round(i * (n - side) / (count - 1)) for i in range(count)]


def style_vector(net: ArbitraryStyleNet, image: torch.Tensor, mask=None) -> torch.Tensor:
    """(1, 100) style vector of a (1, 3, H, W) image in 0..1: the mean over its tiles; with
    a mask (1, 1, H, W), of the part of the image inside its bounding box, each tile
    counted by how much of it the mask covers."""
    if mask is None:
        return net.predictor(predictor_input(image)).mean(0, keepdim=True)
    ys, xs = torch.nonzero(mask[0, 0] > 0, as_tuple=True)
    box = (..., slice(int(ys.min()), int(ys.max()) + 1), slice(int(xs.min()), int(xs.max()) + 1))
    image, mask = image[box], mask[box]
    weights = predictor_input(mask.expand(-1, 3, -1, -1))[:, 0].mean((1, 2))
    vectors = net.predictor(predictor_input(image))
    return (vectors * weights[:, None]).sum(0, keepdim=True) / weights.sum().clamp_min(1e-12)


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


def transform(net: ArbitraryStyleNet, content: torch.Tensor, vec: torch.Tensor):
    """Run the transformer in one pass on any size: pad to a multiple of 4, crop back."""
    h, w = content.shape[-2:]
    return net.transformer(pad_to(content, padded_size(h), padded_size(w)), vec)[..., :h, :w]


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


def stylize_tensor(net: ArbitraryStyleNet, content: torch.Tensor, vec: torch.Tensor, *,
                   tile_size: int = 1024, report=None, inner=None):
    """Stylised (1, 3, H, W) content; above tile_size px it runs in tiles, exactly.

    inner: (top, bottom, left, right) in content's pixels: the instance norms take their
    statistics from that part only (the picture proper inside a margin; None: all of it).

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
    region = None if inner is None else (inner[0] / ph, inner[1] / ph, inner[2] / pw,
                                         inner[3] / pw)
    if plan is None:
        out = t(x, vec, region)
        if report:
            report(1, 1)
        return out[..., :h, :w]
    done = [0]

    def tick():
        done[0] += 1
        if report:
            report(done[0], plan[1])

    tiles = Tiles(plan[0], tick)
    quarter = t.residuals(tiles.map(t.encode, x, 1, 0.25, ENCODER_MARGIN, 4), vec, region)
    del x

    def up1(s):
        return t.decoder_conv(0, s)

    def up2(s):
        return t.decoder_conv(1, s)

    def last(s):
        return t.decoder_conv(2, t.decoder_out(1, up2(s), vec, s2))

    s1 = tiles.stats(up1, quarter, 0.25, 2, UP1_MARGIN, region=region)
    half = tiles.map(lambda s: t.decoder_out(0, up1(s), vec, s1), quarter, 0.25, 2, UP1_MARGIN)
    del quarter
    s2 = tiles.stats(up2, half, 0.5, 2, DECODER_MARGIN, region=region)
    s3 = tiles.stats(last, half, 0.5, 2, DECODER_MARGIN, region=region)
    out = tiles.map(lambda s: t.decoder_out(2, last(s), vec, s3), half, 0.5, 2, DECODER_MARGIN)
    return out[..., :h, :w]


# The network's own border: painted plainly, a picture gets a light band along its top edge
# (the outer 6 px +19 grey levels over the next 24 on average over 21 photo and painting
# pairs, the photo's own figure subtracted) and a dark one along the bottom (-8). Painted
# inside a mirrored margin of MARGIN canvas px (the residual blocks see about that far) and
# cut out, with the instance norms' statistics from the picture alone (with the margin in
# them the picture came out less stylised: grey style ratio 0.387 against 0.359 on the shared
# pairs), the edges are as the interior: -3 to +1 on average, and each picture's figure
# within the spread the same figure has at interior lines.
MARGIN = 32
# The network's stride grid: two stride-2 convolutions and two 2x nearest-neighbour
# upsamplings lock its finest texture to a period of 4 canvas px (spectral peaks at exactly
# 1/4 and 1/2 cycle per pixel, 10-30x the spectrum around them), which the enlargement to a
# large layer turns into a lattice of dots. So an enlarged canvas is painted at each of the
# 16 positions of the picture on that grid, and each small irregular patch (Voronoi cells of
# about CELL canvas px) takes one of them, chosen by `seed`: the texture stays, its
# regularity goes. (The mean of the 16 removes the lattice too, and with it the brushwork:
# grey style ratio 0.61 against 0.35.)
PHASES = tuple((dy, dx) for dy in range(4) for dx in range(4))
CELL = 6


def quantise(x: torch.Tensor) -> torch.Tensor:
    """To 8-bit levels. The instance norms amplify whatever varies: on a flat photo the
    resampling's rounding (1e-8) grew into a plaid across the whole picture."""
    return (x * 255).round_() / 255


def mirror_pad(x: torch.Tensor, top, bottom, left, right) -> torch.Tensor:
    """Pad with the picture mirrored, as often as a small picture needs (edge pixels
    repeated where it is a single pixel wide)."""
    while top or bottom or left or right:
        h, w = x.shape[-2:]
        if min(h, w) < 2:
            return F.pad(x, (left, right, top, bottom), mode='replicate')
        t, b, l, r = (min(n, side - 1) for n, side in ((top, h), (bottom, h), (left, w),
                                                        (right, w)))
        x = F.pad(x, (l, r, t, b), mode='reflect')
        top, bottom, left, right = top - t, bottom - b, left - l, right - r
    return x


def frame(h, w, phase):
    """(top, bottom, left, right): the margin around an h x w canvas placed at `phase`;
    the framed size is the same at every phase (so a flat photo is painted alike at all)."""
    top, left = MARGIN + phase[0], MARGIN + phase[1]
    return (top, padded_size(h + 2 * MARGIN + 3) - h - top,
            left, padded_size(w + 2 * MARGIN + 3) - w - left)


def render(net, canvas, vec, phase=(0, 0), tile_size=2048, report=None):
    """The network on `canvas` inside a mirrored margin, the picture placed at `phase` on
    its stride grid; cut back to the canvas."""
    h, w = canvas.shape[-2:]
    top, bottom, left, right = frame(h, w, phase)
    x = mirror_pad(canvas, top, bottom, left, right)
    # the norms' statistics from the part of the canvas that is inside the frame at every
    # phase (all but 3 rows and columns at most): the same pixels for all 16 paintings
    inner = (MARGIN + 3, MARGIN + 3 + max(1, h - 3), MARGIN + 3, MARGIN + 3 + max(1, w - 3))
    out = stylize_tensor(net, x, vec, tile_size=tile_size, report=report, inner=inner)
    return out[..., top:top + h, left:left + w]


def phase_map(h, w, n, seed=0, cell=CELL) -> torch.Tensor:
    """(h, w) labels 0..n-1 in irregular patches: each pixel takes the label of the nearest
    of seeds scattered one to a cell x cell square (a jittered grid), each seed a random
    label. Square patches would be a lattice of their own."""
    g = torch.Generator().manual_seed(seed)
    gh, gw = -(-h // cell) + 2, -(-w // cell) + 2
    sy = (torch.arange(gh)[:, None] - 1 + torch.rand(gh, gw, generator=g)) * cell
    sx = (torch.arange(gw)[None, :] - 1 + torch.rand(gh, gw, generator=g)) * cell
    label = torch.randint(0, n, (gh, gw), generator=g)
    yy = torch.arange(h, dtype=torch.float32)[:, None] + 0.5
    xx = torch.arange(w, dtype=torch.float32)[None, :] + 0.5
    cy, cx = (yy // cell).long() + 1, (xx // cell).long() + 1
    best = torch.full((h, w), float('inf'))
    out = torch.zeros(h, w, dtype=torch.long)
    for dy in (-1, 0, 1):            # the nearest seed is in this cell or a neighbour
        for dx in (-1, 0, 1):
            iy, ix = (cy + dy).expand(h, w), (cx + dx).expand(h, w)
            d = (sy[iy, ix] - yy) ** 2 + (sx[iy, ix] - xx) ** 2
            nearer = d < best
            best = torch.where(nearer, d, best)
            out = torch.where(nearer, label[iy, ix], out)
    return out


def phases_for(canvas_hw, out_hw):
    """All grid positions where the canvas is enlarged (the lattice would show), else one."""
    return PHASES if out_hw[0] > canvas_hw[0] or out_hw[1] > canvas_hw[1] else PHASES[:1]


def paint_steps(canvas_hw, out_hw, tile_size):
    """Progress steps of paint_canvas."""
    h, w = canvas_hw
    total = 0
    for phase in phases_for(canvas_hw, out_hw):
        top, bottom, left, right = frame(h, w, phase)
        total += count_steps(h + top + bottom, w + left + right, tile_size)
    return total


def paint_canvas(net, canvas, vec, out_hw, seed=0, tile_size=2048, report=None):
    """(1, 3, h, w): the canvas painted, without the network's border or its lattice.
    report(step, total) after each network tile."""
    canvas = quantise(canvas.clone())
    h, w = canvas.shape[-2:]
    phases = phases_for((h, w), out_hw)
    done, total = [0], paint_steps((h, w), out_hw, tile_size)

    def tick(*_):
        done[0] += 1
        if report:
            report(done[0], total)

    if len(phases) == 1:
        return render(net, canvas, vec, phases[0], tile_size, tick)
    labels = phase_map(h, w, len(phases), seed).to(canvas.device)
    out = None
    for i, phase in enumerate(phases):
        painted = render(net, canvas, vec, phase, tile_size, tick)
        out = painted if out is None else torch.where(labels == i, painted, out)
    return out


def paint(net, content, vec, style_scale=1.0, detail_amount=1.0, tile_size=2048,
          finish=None, report_paint=None, report_detail=None, seed=0, share=None):
    """(1, 3, H, W): content painted on the canvas, enlarged to content's size with detail.

    report_paint(step, total) after each network tile, report_detail(step, total) after
    each band of output rows; finish(band, content_band) as in detail.enlarge.
    share: by region (regions.py): vec is a list of K vectors, share (K, 1, H, W) each
    one's share of each pixel; the canvas is painted with each and the pictures mixed by
    the shares at the output size (a hard mask keeps its edge at 100 %), the content where
    no share reaches.
    """
    small = resize(content, canvas_size(*content.shape[-2:], style_scale)).clamp(0, 1)
    if share is None:
        painted = paint_canvas(net, small, vec, content.shape[-2:], seed, tile_size,
                               report_paint)
        return detail.enlarge(content, small, painted, detail_amount, finish=finish,
                              report=report_detail)
    done, each = [0], paint_steps(small.shape[-2:], content.shape[-2:], tile_size)

    def tick(step, total):
        if report_paint:
            report_paint(done[0] * each + step, each * len(vec))
    painted = []
    for v in vec:
        painted.append(paint_canvas(net, small, v, content.shape[-2:], seed, tile_size, tick))
        done[0] += 1

    def mix(pictures, y0, y1, photo):
        part = share[..., y0:y1, :]
        out = photo * (1 - part.sum(0))
        for s, p in zip(part, pictures):
            out = out + s[None] * p
        return out
    return detail.enlarge(content, small, painted, detail_amount, finish=finish,
                          report=report_detail, mix=mix)


def fade_to_content(out, content, strength):
    """Below strength 0.5, blend the picture back towards the content itself.

    With the content's own style vector the network is close to, not equal to, the identity
    (mean difference 0.11 on a photo), so vector interpolation alone cannot honour
    "0 keeps the photo". Above 0.5 the interpolated vector alone sets the strength.
    """
    return torch.lerp(content, out, min(1.0, 2.0 * strength))


# Relative cost per pixel of the three stages, for an even progress bar (one CPU thread: the
# predictor 0.33 us a pixel of its 256^2 tiles, about two a style; the network 0.47 us a
# canvas pixel; detail 0.03 us an output pixel).
COST = {'style': 1.4, 'paint': 1.0, 'detail': 0.07}


def paint_photo(net: ArbitraryStyleNet, content, styles, *, style_weights=None, strength=1.0,
                style_scale=1.0, preserve_colors='none', detail=1.0, size=512, device='cpu',
                tile_size=2048, seed=0, callback=None, cancel=None, models=None,
                net_key=None, style_masks=None, painting_masks=None) -> torch.Tensor:
    """The fast method on PIL images with a given network; returns (1, 3, H, W) in 0..1.

    models, net_key: where the styles' vectors are kept, under the network's key, so that a
    batch reads each style once (None: read every time). style_masks, painting_masks: as
    stylize()'s."""
    dev = pick(device) if isinstance(device, str) else device
    net = net.to(dev)
    content = imageio.rgb(content)
    content_t = imageio.to_tensor(imageio.resize(content, imageio.working_size(content.size,
                                                                                size)), dev)
    H, W = content_t.shape[-2:]
    h, w = canvas_size(H, W, style_scale)
    recolour = preserve_colors == 'histogram'         # styles recoloured to this content
    memo = models if models is not None else loaded.LoadedModels()
    pmasks = regions.padded(painting_masks, len(styles))
    keys = [None if recolour or models is None else (net_key, *_style_key(dev, s, m))
            for s, m in zip(styles, pmasks)]
    n_vec = sum(k is None or k not in memo for k in keys) + (strength < 1.0)
    by_region = regions.given(style_masks)
    steps = paint_steps((h, w), (H, W), tile_size) * (len(styles) if by_region else 1)
    bands = detail_bands(H, W)
    tracker = Tracker([('Reading the style', n_vec, COST['style'] * PREDICTOR_SIZE ** 2),
                       ('Stylizing', steps, COST['paint'] * h * w / steps),
                       ('Adding detail', bands, COST['detail'] * H * W / bands)],
                      callback, cancel)
    tracker.report(0, 0)
    done = [0]

    def read(image, mask=None):
        done[0] += 1
        vec = style_vector(net, image, mask)
        tracker.report(0, done[0])
        return vec

    def finish(band, photo):
        band = fade_to_content(band, photo, strength)
        return luminance_transfer(band, photo) if preserve_colors == 'luminance' else band

    with torch.inference_mode():
        def read_style(style, mask):
            style_t = imageio.to_tensor(imageio.rgb(style), dev)
            mask_t = regions.to_tensor(mask, style.size, dev)
            return read(match_histogram(style_t, content_t) if recolour else style_t, mask_t)

        vectors = [memo.get(key, lambda: read_style(style, mask))
                   for style, key, mask in zip(styles, keys, pmasks)]
        own = read(content_t) if strength < 1.0 else None
        share = None
        if by_region:
            share = regions.shares([regions.to_tensor(m, (W, H), dev) for m in
                                    regions.padded(style_masks, len(styles))],
                                   style_weights or [1.0] * len(styles), (H, W))
            vec = [v if own is None else strength * v + (1.0 - strength) * own
                   for v in vectors]
        else:
            vec = blend_vectors(vectors, style_weights)
            if own is not None:
                vec = strength * vec + (1.0 - strength) * own
        return paint(net, content_t, vec, style_scale, detail, tile_size, finish,
                     lambda step, total: tracker.report(1, step, total=total),
                     lambda step, total: tracker.report(2, step, total=total), seed, share)


def _style_key(device, image, mask=None):
    """Identifies a style image's vector for one network: device and pixels (a digest), and
    the painting mask's."""
    image = imageio.rgb(image)
    digest = hashlib.blake2b(image.tobytes(), digest_size=16)
    if mask is not None:
        digest.update(b'mask' + regions.to_array(mask).tobytes())
    return 'style vector', str(device), image.size, digest.digest()


def detail_bands(h, w):
    """Progress steps of detail.enlarge at an h x w output."""
    return detail.count_bands(h, w)


def stylize_fast(content, styles, *, style_weights=None, strength=1.0, style_scale=1.0,
                 preserve_colors='none', detail=1.0, size=512, device='auto', seed=0,
                 model='auto', cache_dir=None, tile_size=2048, callback=None, cancel=None,
                 log=None, models=None, style_masks=None, painting_masks=None,
                 **_quality_only):
    """stylize(method='fast'): see nst_core.stylize for the options. Returns a PIL RGB image.

    `seed` chooses which grid position paints each patch of an enlarged canvas (see
    PHASES); quality-only options (preset, iterations, losses, VGG layers, optimiser, init,
    precision) are ignored. models: the LoadedModels the network and the styles' vectors
    are kept in (default: the process's).
    """
    check_detail(detail)
    models = loaded.chosen(models)
    net = load_network(model, cache_dir, log, models)
    with idle_threads():
        out = paint_photo(net, content, styles, style_weights=style_weights,
                          strength=strength, style_scale=style_scale,
                          preserve_colors=preserve_colors, detail=detail, size=size,
                          device=device, tile_size=tile_size, seed=seed, callback=callback,
                          cancel=cancel, models=models, net_key=network_key(model, cache_dir),
                          style_masks=style_masks, painting_masks=painting_masks)
    return imageio.to_pil(out)


def start_picture(content: torch.Tensor, styles, *, style_weights=None, strength=1.0,
                  style_scale=1.0, detail=1.0, tile_size=2048, seed=0, cache_dir=None,
                  log=None, models=None, style_masks=None,
                  painting_masks=None) -> torch.Tensor:
    """Quality's start for init='fast': the fast result at the content's size.

    content: (1, 3, H, W) in 0..1 on the working device; styles: PIL images. The network is
    the 'auto' one: Quality's `model` names a VGG.
    """
    net = load_network('auto', cache_dir, log, models).to(content.device)
    dev = content.device
    with torch.inference_mode():
        tensors = [imageio.to_tensor(imageio.rgb(s), dev) for s in styles]
        if not regions.given(style_masks) and not regions.given(painting_masks):
            vec = target_vector(net, content, tensors, style_weights, strength)
            out = paint(net, content, vec, style_scale, detail, tile_size=tile_size,
                        seed=seed)
        else:
            vectors = [style_vector(net, t, regions.to_tensor(m, s.size, dev)) for s, t, m
                       in zip(styles, tensors, regions.padded(painting_masks, len(styles)))]
            own = style_vector(net, content) if strength < 1.0 else None
            vectors = [v if own is None else strength * v + (1.0 - strength) * own
                       for v in vectors]
            weights = style_weights or [1.0] * len(styles)
            H, W = content.shape[-2:]
            share = None
            if regions.given(style_masks):
                share = regions.shares([regions.to_tensor(m, (W, H), dev) for m in
                                        regions.padded(style_masks, len(styles))],
                                       weights, (H, W))
            else:
                vectors = blend_vectors(vectors, weights)
            out = paint(net, content, vectors, style_scale, detail, tile_size=tile_size,
                        seed=seed, share=share)
    # a plain (not inference-mode, not channels-last) tensor: the optimiser views it flat
    return out.contiguous(memory_format=torch.contiguous_format).clone()
