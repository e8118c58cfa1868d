"""Trained method: a network trained for one style (Johnson et al. 2016), in one pass.

The network is a TransformerNet (models/transformer.py) from a file: one that
`python -m nst_core train` wrote, or one of pytorch/examples' fast_neural_style models
(candy, mosaic, rain_princess, udnie), old ones with stale instance-norm statistics too. It
is loaded with weights_only=True (a file that would run code is refused) and checked key by
key, so a wrong file is one clear line.

Like Fast, it paints on a canvas of a fixed number of pixels (canvas.CANVAS_AREA / style_scale^2),
because the network paints strokes of a fixed size in pixels: at the layer's own size a
4096 px photo would get strokes a tenth as large, relative to the picture, as a 384 px one.
detail.py then enlarges the canvas and puts back the photo's finer detail, in bands of
rows. A canvas larger than tile_size (a small style_scale) runs in tiles whose result is the
one-pass result to float rounding: every instance norm gets the whole canvas's statistics
from sweeps over the tiles, and tiles overlap by more than the receptive field, on the
network's stride grid.
"""
import logging
from pathlib import Path

import torch

from . import imageio, loaded, regions
from .colour import luminance_transfer, match_histogram
from .detail import count_bands, enlarge
from .device import pick
from .canvas import Tiles, canvas_size, check_detail, pad_to, padded_size
from .device import idle_threads
from .models.transformer import TransformerNet, clean_state, layout_problems
from .progress import Tracker
from .resample import resize
from .weights.base import WeightsError

_log = logging.getLogger(__name__)
HINT = ('give a model written by `python -m nst_core train`, or a pytorch/examples '
        'fast_neural_style model (candy.pth, mosaic.pth, ...)')
# Context each tiled sweep needs, in its source's pixels (receptive radius, rounded up):
ENCODER_MARGIN = 16     # 9x9 (4 px) + two stride-2 3x3 convs (1 + 2 px) at full resolution
DECODER_MARGIN = 4      # 3x3 at half (0.5), 3x3 (0.25) and 9x9 (1) at full: 1.75 quarter px


def unwrap(state: dict) -> dict:
    """The network's tensors from a plain state dict, a training checkpoint ('model') or a
    common wrapper ('state_dict')."""
    for key in ('model', 'state_dict'):
        inner = state.get(key)
        if isinstance(inner, dict):
            return inner
    return state


def load_model(path) -> TransformerNet:
    """The TransformerNet in `path`, or WeightsError saying what is wrong with the file."""
    from .weights.cache import torch_load_plain
    path = Path(path).expanduser()
    if not path.is_file():
        raise WeightsError('trained model %s does not exist; %s' % (path, HINT))
    state = clean_state(unwrap(torch_load_plain(path, hint=HINT)))
    problems = layout_problems(state)
    if problems:
        guess = ' (it looks like a VGG: those are for --model)' \
            if any(str(k).startswith('features.') for k in state) else ''
        raise WeightsError('%s is not a fast-neural-style model%s: %s; %s'
                           % (path, guess, problems[0], HINT))
    net = TransformerNet()
    net.load_state_dict({k: v.float() for k, v in state.items()})
    return net.eval().requires_grad_(False)


def load_network(path, log=None, models=None) -> TransformerNet:
    """load_model, kept in `models` (default: the process's) by the file and its version."""
    p = Path(path).expanduser()
    try:
        st = p.stat()
        key = ('trained network', str(p.resolve()), st.st_mtime_ns, st.st_size)
    except OSError:
        key = None                   # load_model says what is wrong
    return loaded.chosen(models).get(key, lambda: _read_network(p, log or _log.info))


def _read_network(path, log):
    net = load_model(path)
    log('trained model: %s' % path)
    return net


def _plan(h, w, tile_size):
    """(tile side, progress steps) for a padded h x w canvas, or None if it runs whole."""
    if max(h, w) <= tile_size:
        return None
    tile = max(64, tile_size // 4 * 4 - 2 * ENCODER_MARGIN)
    probe = Tiles(tile)
    full = len(probe.spans((h, w), 1, ENCODER_MARGIN, 4))
    quarter = len(probe.spans((h // 4, w // 4), 0.25, DECODER_MARGIN, 1))
    return tile, 4 * full + 3 * quarter          # encoder: 3 sweeps + map; decoder: 2 + map


def count_steps(h, w, tile_size):
    plan = _plan(padded_size(h), padded_size(w), tile_size)
    return 1 if plan is None else plan[1]


def paint_tensor(net, image, *, tile_size=2048, report=None):
    """(1, 3, H, W) in 0..1 painted; above tile_size px in tiles, to the same result."""
    h, w = image.shape[-2:]
    x = pad_to(image, padded_size(h), padded_size(w)) * 255.0
    plan = _plan(*x.shape[-2:], tile_size)
    if plan is None:
        out = net(x)
        if report:
            report(1, 1)
    else:
        out = _tiled(net, x, plan, report)
    return (out[..., :h, :w] / 255.0).clamp(0, 1)


def _tiled(net, x, plan, report):
    done = [0]

    def tick():
        done[0] += 1
        if report:
            report(done[0], plan[1])

    tiles, m, d = Tiles(plan[0], tick), ENCODER_MARGIN, DECODER_MARGIN
    s1 = tiles.stats(lambda s: net.encode_to(s, 1), x, 1, 1, m, 4)
    s2 = tiles.stats(lambda s: net.encode_to(s, 2, (s1,)), x, 1, 0.5, m, 4)
    s3 = tiles.stats(lambda s: net.encode_to(s, 3, (s1, s2)), x, 1, 0.25, m, 4)
    quarter = net.residuals(tiles.map(lambda s: net.encode(s, (s1, s2, s3)), x, 1, 0.25, m, 4))
    s4 = tiles.stats(lambda s: net.decode_to(s, 1), quarter, 0.25, 2, d)
    s5 = tiles.stats(lambda s: net.decode_to(s, 2, (s4,)), quarter, 0.25, 4, d)
    return tiles.map(lambda s: net.decode_to(s, 3, (s4, s5)), quarter, 0.25, 4, d)


# Relative cost per pixel of the stages, for an even progress bar (one CPU thread: the
# network about 3 us a canvas pixel, detail 0.03 us an output pixel).
COST = {'paint': 1.0, 'detail': 0.01}


def paint_photo(net, content, *, strength=1.0, style_scale=1.0, preserve_colors='none',
                detail=1.0, size=512, device='cpu', tile_size=2048, callback=None,
                cancel=None, style_mask=None) -> torch.Tensor:
    """The trained method on a PIL image with a loaded network: (1, 3, H, W) in 0..1;
    style_mask (a greyscale PIL image at content's size): where it paints, the photo
    elsewhere."""
    dev = pick(device) if isinstance(device, str) else device
    net = net.to(dev)
    content = imageio.rgb(content)
    photo = imageio.to_tensor(imageio.resize(content, imageio.working_size(content.size, size)),
                              dev)
    H, W = photo.shape[-2:]
    h, w = canvas_size(H, W, style_scale)
    steps, bands = count_steps(h, w, tile_size), count_bands(H, W)
    tracker = Tracker([('Stylizing', steps, COST['paint'] * h * w / steps),
                       ('Adding detail', bands, COST['detail'] * H * W / bands)],
                      callback, cancel)
    tracker.report(0, 0)

    share = regions.to_tensor(style_mask, (W, H), dev)

    def finish(band, photo_band):
        band = torch.lerp(photo_band, band, strength)
        return luminance_transfer(band, photo_band) if preserve_colors == 'luminance' else band

    with torch.inference_mode():
        small = resize(photo, (h, w)).clamp(0, 1)
        painted = paint_tensor(net, small, tile_size=tile_size,
                               report=lambda step, total: tracker.report(0, step, total=total))
        if preserve_colors == 'histogram':
            # the style is in the network, not in an image that could be recoloured first:
            # the painting takes the photo's colour mean and covariance instead
            painted = match_histogram(painted, small)
        mix = None if share is None else \
            lambda pictures, y0, y1, band: torch.lerp(band, pictures[0], share[..., y0:y1, :])
        return enlarge(photo, small, [painted] if mix else painted, detail, finish=finish,
                       report=lambda step, total: tracker.report(1, step, total=total), mix=mix)


def stylize_trained(content, styles=(), *, trained_model=None, strength=1.0, style_scale=1.0,
                    preserve_colors='none', detail=1.0, size=512, device='auto',
                    tile_size=2048, callback=None, cancel=None, log=None, models=None,
                    style_masks=None, **_other_methods):
    """stylize(method='trained'): see nst_core.stylize. The style is the network's own, so
    `styles` are not used; the network is deterministic, so `seed` changes nothing."""
    check_detail(detail)
    log = log or _log.info
    if styles:
        log('trained model: the style is the one it was trained on; the style images given '
            'are not used')
    net = load_network(trained_model, log, models)
    with idle_threads():
        out = paint_photo(net, content, strength=strength, style_scale=style_scale,
                          preserve_colors=preserve_colors, detail=detail, size=size,
                          device=device, tile_size=tile_size, callback=callback,
                          cancel=cancel, style_mask=(style_masks or [None])[0])
    return imageio.to_pil(out)
