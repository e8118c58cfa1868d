"""The library's API: stylize(), the one entry point that repaints a content image in the
style of one or more images, and its options.

The keyword defaults of ``stylize`` are the single source of truth for options: the CLI and
the worker read them back with ``inspect.signature`` (see ``options()``).
"""
import inspect
import logging
import typing
from typing import Callable, Literal, Optional, Sequence

from PIL import Image

from . import loaded
from .progress import Progress

Method = Literal['quality', 'fast', 'trained']
Preset = Literal['draft', 'normal', 'best']
ColourMode = Literal['none', 'luminance', 'histogram']
Init = Literal['content', 'palette', 'noise', 'fast', 'image']
Optimizer = Literal['lbfgs', 'adam']
Pooling = Literal['max', 'avg']
Device = Literal['auto', 'cpu', 'cuda', 'mps']
Precision = Literal['auto', 'fp32', 'bf16']

# Strength's top: 1 is the recipe's balance, above it Quality paints bolder (quality.
# style_share); by 2 the judged style has almost stopped growing (docs/quality.md).
STRENGTH_MAX = 2.0


def stylize(
    content: Image.Image,
    styles: Sequence[Image.Image],
    *,
    method: Method = 'quality',
    style_weights: Optional[Sequence[float]] = None,
    style_masks: Optional[Sequence[Optional[Image.Image]]] = None,
    painting_masks: Optional[Sequence[Optional[Image.Image]]] = None,
    strength: float = 1.0,
    style_scale: float = 1.0,
    preserve_colors: ColourMode = 'none',
    detail: float = 1.0,
    size: int = 0,
    fit: bool = False,
    preset: Preset = 'normal',
    iterations: Optional[int] = None,
    device: Device = 'auto',
    seed: int = 0,
    init: Init = 'palette',
    init_image: Optional[Image.Image] = None,
    optimizer: Optimizer = 'lbfgs',
    content_weight: float = 1.0,
    style_weight: float = 50.0,
    tv_weight: float = 10.0,
    content_layers: Sequence[str] = ('relu4_2',),
    style_layers: Sequence[str] = ('relu1_1', 'relu2_1', 'relu3_1', 'relu4_1', 'relu5_1'),
    style_layer_weights: Optional[Sequence[float]] = None,
    pooling: Pooling = 'max',
    precision: Precision = 'auto',
    model: str = 'auto',
    trained_model: Optional[str] = None,
    cache_dir: Optional[str] = None,
    tile_size: int = 2048,
    callback: Optional[Callable[[Progress], None]] = None,
    cancel=None,
    log: Optional[Callable[[str], None]] = None,
) -> Image.Image:
    """Return `content` repainted in the blended style of `styles` (an RGB image).

    content, styles: PIL images (any mode; alpha is ignored here, callers keep it).
    method: 'quality' optimises the image with Gatys et al.'s VGG losses (slow, best);
        'fast' runs a pretrained arbitrary-style network (Ghiasi et al.) in one pass;
        'trained' runs trained_model, a network trained for one style (Johnson et al.).
    style_weights: blend weight per style (default equal); normalised to sum 1.
    style_masks: where each style paints: per style a greyscale image at the content's size,
        white = here, soft masks blend; None (or a missing one) = everywhere. Complementary
        masks split the picture, overlapping ones blend by style_weights, and where no mask
        reaches the content stays as it is. Quality matches each region to its own painting
        (guided Gram matrices); Fast and Trained paint once per style and mix by the masks.
        For 'trained', one mask: where its network paints.
    painting_masks: per style a greyscale image at that painting's size: the part of the
        painting its style is read from (None = all of it).
    strength: 0..2, how much style: 0 returns the content, 1 the recipe's balance; for
        'quality' it scales the style and TV weights logarithmically (0.67 = a tenth, 2 =
        ten times), which looks even to the eye, and the palette init linearly up to 1.
        'fast' and 'trained' paint at most their network's full style: above 1 they paint
        at 1 (and say so in the log).
    style_scale: size of the style's strokes relative to the content.
    preserve_colors: keep the content's colours: 'luminance' transfers only luminance,
        'histogram' matches the style's colours to the content's before transfer ('trained':
        the painting's to the content's, after).
    detail: 'fast' and 'trained' paint on a canvas of fixed size (strokes keep their size
        relative to the picture) and put back the photo's detail finer than that: 0 = none
        (softer), 1 = all.
    size: longest side of the working image in pixels (0 = the content's own size). Quality
        paints the picture's layout at 512 px and refines larger pictures octave by octave
        (schedule.py), so a smaller size is faster, not different in look.
    fit: when that size needs more memory than is free, work at the largest size that fits
        instead of refusing (the refusal names that size).
    preset: 'quality' only: 'draft' and 'normal', Gatys's losses coarse to fine in fewer or
        more steps; 'best', those plus nearest-neighbour feature targets (neighbours.py), bolder.
    iterations: override the preset's number of optimiser steps at the final scale.
    device: 'auto' picks CUDA, then MPS, then the CPU.
    seed: random seed; the same seed gives the same picture on the same device.
    init: start from the content recoloured to the styles' palette (its colour mean and
        covariance, as far as strength asks), the content as it is, noise, the 'fast'
        result, or init_image.
    optimizer: 'lbfgs' (as Gatys) or 'adam'.
    content_weight, style_weight, tv_weight: loss weights (content and style losses are
        relative errors per layer; TV is the mean squared step between neighbouring pixels).
    content_layers, style_layers: VGG layer names (relu1_1 ... relu5_4).
    style_layer_weights: per style layer weight (default: each layer a quarter of the one
        before, 256:64:16:4:1 for five, so brushwork counts more than the painting's objects;
        the octaves refined above the 512 px layout weigh them equally).
    pooling: VGG pooling, 'max' as trained or 'avg' (smoother).
    precision: 'auto' uses bfloat16 for VGG on CPUs that compute it natively (2x faster),
        float32 elsewhere; losses are always float32.
    model: VGG weights: 'auto', a source name (python -m nst_core weights list) or a file.
    trained_model: for 'trained', the network file: one from `python -m nst_core train`
        or a pytorch/examples fast_neural_style model (candy.pth, ...); it is the style, so
        no style image is needed.
    cache_dir: weights cache (default $NST_CORE_CACHE or $XDG_CACHE_HOME/nst_core).
    tile_size: 'fast' and 'trained' run canvases larger than this in overlapping tiles.
    callback: called with a Progress after every step.
    cancel: an object with is_set() (e.g. threading.Event); when set, raises Cancelled.
    log: called with one-line notes such as which weights were used (default: logging).
    """
    kwargs = {k: v for k, v in locals().items() if k not in ('content', 'styles')}
    return _dispatch(content, styles, kwargs, loaded.PROCESS)


def stylize_with(models, content, styles, **options):
    """stylize(content, styles, **options) with the networks kept in `models`, a runner's
    own LoadedModels (the warm server's) instead of the process's."""
    bound = inspect.signature(stylize).bind(content, styles, **options)
    bound.apply_defaults()
    kwargs = {k: v for k, v in bound.arguments.items() if k not in ('content', 'styles')}
    return _dispatch(content, styles, kwargs, models)


def _dispatch(content, styles, kwargs, models):
    _validate(content, styles, kwargs)
    if kwargs['log'] is None:
        kwargs['log'] = logging.getLogger('nst_core').info
    if kwargs['method'] != 'quality' and kwargs['strength'] > 1.0:
        # extrapolated past the painting's style vector, Fast's network paints noise, not
        # bolder strokes, and a second pass is judged no bolder (docs/fast.md)
        kwargs['log']('strength %g: the %s method paints at most full strength (1); '
                      'above 1 is for Quality' % (kwargs['strength'], kwargs['method']))
        kwargs['strength'] = 1.0
    kwargs['size'] = _affordable_size(content, kwargs)
    if kwargs['method'] == 'fast':
        from .fast import stylize_fast
        return stylize_fast(content, styles, models=models, **kwargs)
    if kwargs['method'] == 'trained':
        from .trained import stylize_trained
        return stylize_trained(content, styles, models=models, **kwargs)
    from .quality import stylize_quality
    if kwargs['init'] == 'fast':
        kwargs['fast_start'] = _fast_start(kwargs, models)
    return stylize_quality(content, styles, models=models, **kwargs)


def _fast_start(kw, models):
    """Quality's start for init='fast': Fast's picture with the caller's options for Fast
    (style_scale, detail, tile_size and the rest), as method='fast' would paint it."""
    from .fast import start_picture

    def start(content, styles):
        return start_picture(content, styles, style_weights=kw['style_weights'],
                             style_masks=kw['style_masks'],
                             painting_masks=kw['painting_masks'],
                             strength=min(1.0, kw['strength']), style_scale=kw['style_scale'],
                             detail=kw['detail'], tile_size=kw['tile_size'], seed=kw['seed'],
                             cache_dir=kw['cache_dir'], log=kw['log'], models=models)
    return start


def _affordable_size(content, kw):
    """kw['size'], or with fit a smaller one that fits in memory; NotEnoughMemory otherwise."""
    from . import imageio, memory
    from .device import pick
    wh = imageio.working_size(content.size, kw['size'])
    # a trained network, like Fast, paints a canvas of fixed size and enlarges it in bands
    estimate = 'fast' if kw['method'] == 'trained' else kw['method']
    side = memory.check(estimate, wh, memory.available(pick(kw['device'])),
                        kw['optimizer'], kw['fit'])
    if side == max(wh):
        return kw['size']
    kw['log']('not enough memory for %d px: working at %d px' % (max(wh), side))
    return side


def options():
    """Name -> inspect.Parameter for every keyword option of stylize()."""
    params = inspect.signature(stylize).parameters
    return {n: p for n, p in params.items() if p.kind is p.KEYWORD_ONLY}


def choices(name):
    """The allowed values of a Literal-typed option, or None."""
    hint = typing.get_type_hints(stylize)[name]
    if typing.get_origin(hint) is Literal:
        return typing.get_args(hint)
    return None


def _validate(content, styles, kw):
    if kw['method'] == 'trained':
        if not kw['trained_model']:
            raise ValueError("method 'trained' needs trained_model: a network file from "
                             "`python -m nst_core train` or pytorch/examples' fast_neural_style")
    elif not styles:
        raise ValueError('at least one style image is needed')
    for name in ('method', 'preset', 'preserve_colors', 'device', 'init', 'optimizer',
                 'pooling', 'precision'):
        allowed = choices(name)
        if kw[name] not in allowed:
            raise ValueError('%s must be one of %s, not %r'
                             % (name, ', '.join(allowed), kw[name]))
    if not 0.0 <= kw['strength'] <= STRENGTH_MAX:
        raise ValueError('strength must be between 0 and %g, not %r'
                         % (STRENGTH_MAX, kw['strength']))
    if not kw['style_scale'] > 0:
        raise ValueError('style_scale must be positive, not %r' % kw['style_scale'])
    if kw['size'] < 0:
        raise ValueError('size must be 0 (full size) or a positive number of pixels')
    weights = kw['style_weights']
    if weights is not None:
        if len(weights) != len(styles):
            raise ValueError('%d style weights given for %d styles'
                             % (len(weights), len(styles)))
        if any(w < 0 for w in weights) or sum(weights) <= 0:
            raise ValueError('style weights must be >= 0 and not all zero')
    layer_weights = kw['style_layer_weights']
    if layer_weights is not None and len(layer_weights) != len(kw['style_layers']):
        raise ValueError('%d style layer weights given for %d style layers'
                         % (len(layer_weights), len(kw['style_layers'])))
    if kw['init'] == 'image' and kw['init_image'] is None:
        raise ValueError("init='image' needs init_image")
    if kw['iterations'] is not None and kw['iterations'] < 1:
        raise ValueError('iterations must be at least 1')
    if kw['tile_size'] < 64:
        raise ValueError('tile_size must be at least 64')
    for img in (content, *styles):
        if min(img.size) < 1:
            raise ValueError('empty image (%dx%d)' % img.size)
    _validate_masks(content, styles, kw)


def _validate_masks(content, styles, kw):
    from . import regions
    trained = kw['method'] == 'trained'
    regions.check(kw['style_masks'], [content.size] * (1 if trained else len(styles)),
                  'style mask', 'trained network' if trained else 'styles')
    if trained and kw['painting_masks'] is not None and regions.given(kw['painting_masks']):
        raise regions.MaskError('a trained network is its own style: it has no painting '
                                'to take a part of (painting masks)')
    regions.check(kw['painting_masks'], [s.size for s in styles], 'painting mask', 'styles')
