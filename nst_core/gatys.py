"""Quality method: Gatys et al. (2016) image optimisation on VGG features, coarse to fine."""
import contextlib
import math
from typing import Dict, List, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from . import imageio, losses, schedule
from .colour import luminance_transfer, match_colours, match_histogram
from .device import pick
from .models.vgg import VGGFeatures, tiny_random
from .progress import Tracker

ADAM_LR = 0.02     # per step, on a 0..1 image (crowsonkb's default)
LBFGS_HISTORY = 100
# VGG halves the image 4 times before relu5_1: a side under 16 px leaves a layer no pixels
# (a crash), and near 16 px the deepest layers see one or two pixels. Smaller images (1x1
# layers, 8000x16 strips, coarse scales of thin images) are padded up to this, then cropped.
MIN_SIDE = 32


def load_features(model: str, layers: Sequence[str], *, pooling='max', cache_dir=None,
                  log=print) -> VGGFeatures:
    """VGG truncated at the deepest of `layers`, from the weights named by `model`.

    'tiny' is a thin randomly initialised VGG-16 for plumbing tests: it makes pictures of no
    artistic value but exercises every code path in seconds without any download.
    """
    if model == 'tiny':
        return tiny_random('vgg16', layers, pooling=pooling)
    from .weights import load_vgg
    arch, state = load_vgg(model, cache_dir=cache_dir, log=log)
    return VGGFeatures(arch, layers, state, pooling=pooling)


def use_bf16(precision: str, device: torch.device) -> bool:
    if precision != 'auto':
        return precision == 'bf16'
    return device.type == 'cpu' and torch.cpu._is_avx512_bf16_supported()


class GatysLoss(nn.Module):
    """Weighted content + blended-style + total-variation loss for one scale."""

    def __init__(self, vgg: VGGFeatures, content: torch.Tensor, styles: List[torch.Tensor],
                 style_blend: Sequence[float], *, content_layers, style_layers,
                 style_layer_weights, content_weight, style_weight, tv_weight, bf16=False):
        super().__init__()
        self.vgg, self.bf16 = vgg, bf16
        # oneDNN's bf16 convolutions run channels-last natively; in NCHW each layer reorders
        # its input and output (8 L-BFGS steps at 512x384: 17.5 s vs 19.8 s a whole process).
        self.layout = torch.channels_last if bf16 else torch.contiguous_format
        vgg.to(memory_format=self.layout)
        self.content_layers, self.style_layers = list(content_layers), list(style_layers)
        layer_w = style_layer_weights or losses.falloff(len(self.style_layers))
        total = float(sum(layer_w))
        self.style_layer_weights = [w / total for w in layer_w]
        self.weights = dict(content=content_weight, style=style_weight, tv=tv_weight)
        with torch.no_grad():
            feats = self.features(content)
            self.content_targets = {n: feats[n].detach().float() for n in self.content_layers}
            grams = [self._grams(self.features(s)) for s in styles]
            self.style_targets = {n: losses.blend_grams([g[n] for g in grams], style_blend)
                                  for n in self.style_layers}

    def features(self, image) -> Dict[str, torch.Tensor]:
        ctx = torch.autocast('cpu', dtype=torch.bfloat16) if self.bf16 \
            else contextlib.nullcontext()
        with ctx:
            # kept in the compute dtype: the losses cast what they need (a float copy of
            # every tapped map, and its backward, cost a sixth of a step at 512 px)
            return self.vgg(image.contiguous(memory_format=self.layout))

    def _grams(self, feats):
        return {n: losses.gram(feats[n]) for n in self.style_layers}

    def forward(self, image):
        feats = self.features(image)
        content = sum(losses.content_loss(feats[n], t)
                      for n, t in self.content_targets.items()) / len(self.content_targets)
        style = sum(w * losses.style_loss(feats[n], self.style_targets[n])
                    for n, w in zip(self.style_layers, self.style_layer_weights))
        tv = losses.tv_loss(image)
        w = self.weights
        total = w['content'] * content + w['style'] * style + w['tv'] * tv
        parts = {'content': content.detach(), 'style': style.detach(), 'tv': tv.detach()}
        return total, parts


def optimise(image: torch.Tensor, loss_fn, steps: int, optimizer: str, report) -> torch.Tensor:
    """Run `steps` loss evaluations on a copy of `image`; report(step, loss) after each."""
    image = image.detach().clone().requires_grad_(True)
    count = [0]

    def closure():
        opt.zero_grad(set_to_none=True)
        loss, _ = loss_fn(image)
        loss.backward()
        count[0] += 1
        report(count[0], loss.detach().item())
        return loss

    if optimizer == 'lbfgs':
        # One evaluation per step call, so progress and cancel are checked after each.
        opt = torch.optim.LBFGS([image], lr=1, max_iter=1, history_size=LBFGS_HISTORY,
                                tolerance_grad=-1, tolerance_change=-1)
    else:
        opt = torch.optim.Adam([image], lr=ADAM_LR)
    while count[0] < steps:
        opt.step(closure)
        if optimizer == 'adam':
            with torch.no_grad():
                image.clamp_(0, 1)
    return image.detach().clamp(0, 1)


def style_share(strength):
    """The factor on the style (and TV) weight: 1 at strength 1, a tenth each third less, 0
    at 0.

    The look of a result follows the log of the style/content ratio: halving the weight
    barely shows, so a linear slider would do nothing over most of its range. TV smooths
    the grain the style term adds, so it scales with it: at strength 0 only the content
    loss is left, which the content itself already minimises.
    """
    return 0.0 if strength <= 0 else 1000.0 ** (strength - 1)


def _initial(init, content, init_image, generator, kw):
    if init == 'noise':
        return torch.rand(content.shape, generator=generator).to(content)
    if init == 'image':
        return imageio.to_tensor(init_image, content.device)
    if init == 'palette':
        # From the photo, L-BFGS keeps its colours wherever it can (a blue sky stays pale
        # blue under the strokes); from noise it finds the painting's palette but loses the
        # photo's structure. The photo recoloured to the painting's colour mean and
        # covariance starts with both, as far as strength asks for the style.
        style_ts = [imageio.to_tensor(imageio.resize(s, imageio.working_size(s.size, 512)),
                                      content.device) for s in kw['styles']]
        matched = match_colours(content, style_ts, kw['style_weights'])
        return content + kw['strength'] * (matched - content)
    if init == 'fast':
        from .fast import fast_init
        return fast_init(content, kw)
    return content


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


def _style_tensors(styles, scale_size, style_scale, device):
    size = max(16, round(scale_size * style_scale))
    return [repeat_min(imageio.to_tensor(imageio.resize(s, imageio.working_size(s.size, size)),
                                         device)) for s in styles]


def stylize_quality(content, styles, *, style_weights, strength, style_scale, preserve_colors,
                    size, preset, iterations, device, seed, init, init_image, optimizer,
                    content_weight, style_weight, tv_weight, content_layers, style_layers,
                    style_layer_weights, pooling, precision, model, cache_dir, callback, cancel,
                    log, **_fast_only):
    dev = pick(device)
    generator = torch.Generator().manual_seed(seed)
    content = imageio.rgb(content)
    styles = [imageio.rgb(s) for s in styles]
    final_wh = imageio.working_size(content.size, size)
    content_full = imageio.to_tensor(imageio.resize(content, final_wh), dev)
    if preserve_colors == 'histogram':
        styles = [imageio.to_pil(match_histogram(imageio.to_tensor(s), content_full.cpu()))
                  for s in styles]
    vgg = load_features(model, [*content_layers, *style_layers], pooling=pooling,
                        cache_dir=cache_dir, log=log).to(dev)
    bf16 = use_bf16(precision, dev)
    blend = style_weights or [1.0] * len(styles)
    plan = schedule.plan(max(final_wh), preset, iterations)
    tracker = Tracker([('Scale %d/%d' % (i + 1, len(plan)), sc.steps,
                        math.prod(imageio.working_size(final_wh, sc.size))) for i, sc in
                       enumerate(plan)], callback, cancel)
    tracker.report(0, 0)
    image = None
    for i, sc in enumerate(plan):
        wh = imageio.working_size(final_wh, sc.size)
        target = F.interpolate(content_full, size=wh[::-1], mode='bicubic', align_corners=False,
                               antialias=True).clamp(0, 1) if wh != final_wh else content_full
        if image is None:
            kw = dict(styles=styles, style_weights=blend, strength=strength, device=device,
                      cache_dir=cache_dir, seed=seed)
            image = _initial(init, target, init_image, generator, kw)
        image = F.interpolate(image, size=wh[::-1], mode='bicubic',
                              align_corners=False).clamp(0, 1)
        style_ts = _style_tensors(styles, sc.size, style_scale, dev)
        loss_fn = GatysLoss(vgg, pad_min(target), style_ts, blend,
                            content_layers=content_layers, style_layers=style_layers,
                            style_layer_weights=style_layer_weights,
                            content_weight=content_weight,
                            style_weight=style_weight * style_share(strength),
                            tv_weight=tv_weight * style_share(strength), bf16=bf16)
        image = optimise(pad_min(image), loss_fn, sc.steps, optimizer,
                         lambda step, loss, i=i: tracker.report(i, step, loss))
        image = image[..., :wh[1], :wh[0]]          # drop pad_min's padding
    if preserve_colors == 'luminance':
        image = luminance_transfer(image, content_full)
    return imageio.to_pil(image)
