"""Quality method: Gatys et al. (2016) image optimisation on VGG features, coarse to fine."""
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from . import detail, imageio, losses, memory, neighbours, regions, schedule, tiling
from .colour import luminance_transfer, match_colours, match_histogram
from .device import pick
from .features import (each_style_grams, features, layout, load_features, pad_min,
                       repeat_min, style_grams, use_bf16)
from .models.vgg import VGGFeatures
from .progress import Tracker
from .resample import resize

ADAM_LR = 0.02     # per step, on a 0..1 image (crowsonkb's default)
LBFGS_HISTORY = 100
# The most one L-BFGS step may move the picture: the mean |change| of its values (0..1).
# torch's L-BFGS without a line search takes a first step of 1/|gradient|_1, about a hundredth
# of a grey level, and scales the second by the curvature measured over it: where that is
# noise (no content term to steady it, bf16 gradients) the second step overshoots by orders
# of magnitude. On tiles of a 6000 px picture without the content term it moved the picture
# by 0.17-0.94 on average (the loss x40 to x20000) and left tiles of one flat colour. Whole
# runs take such steps too, milder (0.11, the loss x108, on astronaut + shipwreck at 512 px),
# and recover; shortened, they judge the same (docs/quality.md). Longer steps are shortened
# along their direction.
MAX_STEP = 0.1


@dataclass
class RegionTargets:
    """Style targets by region: each style's share of each pixel of the picture (K, 1, h, w)
    and its painting's Gram matrices, [{layer: Gram}] (regions.py)."""
    shares: torch.Tensor
    grams: list

    def crop(self, box) -> 'RegionTargets':
        return RegionTargets(box.crop(self.shares), self.grams)

    def padded(self, hw) -> 'RegionTargets':
        """Padded with no share where pad_min pads the picture."""
        h, w = self.shares.shape[-2:]
        return RegionTargets(F.pad(self.shares, (0, hw[1] - w, 0, hw[0] - h)), self.grams)


class GatysLoss(nn.Module):
    """Weighted content + blended-style + total-variation loss for one scale.

    style_targets (from style_grams) replaces `styles` and `style_blend` when the same
    targets serve many regions: the tiles of one scale. RegionTargets instead: each
    region's guided Grams matched to its own painting's, weighed by its share of the
    picture, so a pixel pays for its own region's style only (and, where no region
    reaches, for none).

    neighbour_samples (neighbours.sample, the scale's paintings) and neighbour_weight > 0 add
    Best's nearest-neighbour term on the same features; with RegionTargets it is paid by
    region too. neighbour_photo: the content image's share in what it matches from.
    """

    def __init__(self, vgg: VGGFeatures, content: torch.Tensor,
                 styles: Optional[List[torch.Tensor]], style_blend: Optional[Sequence[float]],
                 *, content_layers, style_layers, style_layer_weights, content_weight,
                 style_weight, tv_weight, bf16=False, style_targets=None,
                 neighbour_samples=None, neighbour_weight=0.0, neighbour_photo=0.0):
        super().__init__()
        self.vgg, self.bf16 = vgg, bf16
        self.layout = layout(bf16)
        vgg.to(memory_format=self.layout)
        self.content_layers, self.style_layers = list(content_layers), list(style_layers)
        layer_w = style_layer_weights or losses.falloff(len(self.style_layers))
        total = float(sum(layer_w))
        self.style_layer_weights = [w / total for w in layer_w]
        self.weights = dict(content=content_weight, style=style_weight, tv=tv_weight,
                            neighbours=neighbour_weight)
        with torch.no_grad():
            feats = self.features(content)
            self.content, self.neighbour_photo = content, neighbour_photo
            self.content_targets = {n: feats[n].detach().float() for n in self.content_layers}
        self.style_targets = style_targets if style_targets is not None else \
            style_grams(vgg, styles, style_blend, self.style_layers, bf16)
        near_layers = [n for n in neighbours.LAYERS if n in self.style_layers]
        self.neighbours = neighbours.NeighbourTargets(neighbour_samples, near_layers) \
            if neighbour_samples is not None and near_layers and neighbour_weight > 0 else None

    def features(self, image) -> Dict[str, torch.Tensor]:
        return features(self.vgg, image, self.bf16)

    def _region_style(self, feats, targets: RegionTargets):
        style = torch.zeros((), device=targets.shares.device)
        for share, grams in zip(targets.shares, targets.grams):
            part = share.mean()
            if part < regions.MIN_SHARE:
                continue
            share = share[None]
            style = style + part * sum(
                w * losses.relative_mse(regions.guided_gram(feats[n], share), grams[n])
                for n, w in zip(self.style_layers, self.style_layer_weights))
        return style

    def forward(self, image):
        feats = self.features(image)
        content = sum(losses.content_loss(feats[n], t)
                      for n, t in self.content_targets.items()) / len(self.content_targets)
        if isinstance(self.style_targets, RegionTargets):
            style = self._region_style(feats, self.style_targets)
        else:
            style = sum(w * losses.style_loss(feats[n], self.style_targets[n])
                        for n, w in zip(self.style_layers, self.style_layer_weights))
        tv = losses.tv_loss(image)
        w = self.weights
        total = w['content'] * content + w['style'] * style + w['tv'] * tv
        parts = {'content': content.detach(), 'style': style.detach(), 'tv': tv.detach()}
        if self.neighbours is not None:
            regional = isinstance(self.style_targets, RegionTargets)
            near = self.neighbours.loss(feats, self.style_targets.shares if regional else None,
                                        self._match_from(image))
            total = total + w['neighbours'] * near
            parts['neighbours'] = near.detach()
        return total, parts

    def _match_from(self, image):
        """NNST's query: the picture with a share of the scale's content image mixed in (the
        photo; in an octave above 512 px, the picture below enlarged), so that what the
        painting has nothing like is matched as the photo has it, not as the style has
        already smeared it. None: the picture itself."""
        share = self.neighbour_photo
        if share <= 0:
            return None
        return lambda: self.features(share * self.content + (1 - share) * image.detach())


def optimise(image: torch.Tensor, loss_fn, steps: int, optimizer: str, report, *,
             bounds=(0.0, 1.0), with_image=False) -> torch.Tensor:
    """Run `steps` loss evaluations on a copy of `image`; report(step, loss) after each,
    with_image: report(step, loss, image), the live tensor being optimised (for previews:
    read it without autograd and without changing it).

    The result is clamped to `bounds` (None: not at all); Adam's steps are clamped too,
    L-BFGS's are not (its curvature pairs would be wrong).
    """
    image = image.detach().clone().requires_grad_(True)
    count = [0]

    def closure():
        opt.zero_grad(set_to_none=True)
        loss, _ = loss_fn(image)
        loss.backward()
        count[0] += 1
        if with_image:
            report(count[0], loss.detach().item(), image)
        else:
            report(count[0], loss.detach().item())
        return loss

    if optimizer == 'lbfgs':
        # One evaluation per step call, so progress and cancel are checked after each.
        opt = torch.optim.LBFGS([image], lr=1, max_iter=1, history_size=LBFGS_HISTORY,
                                tolerance_grad=-1, tolerance_change=-1)
    else:
        opt = torch.optim.Adam([image], lr=ADAM_LR)
    while count[0] < steps:
        before = image.detach().clone() if optimizer == 'lbfgs' and MAX_STEP else None
        opt.step(closure)
        if before is not None:
            _bound_step(opt, image, before)
        if optimizer == 'adam' and bounds is not None:
            with torch.no_grad():
                image.clamp_(*bounds)
    return image.detach() if bounds is None else image.detach().clamp(*bounds)


def _bound_step(opt, image, before):
    """Shorten L-BFGS's last step to MAX_STEP, and its record of the step with it (its next
    curvature pair is the gradient's change over the step actually taken)."""
    with torch.no_grad():
        moved = (image - before).abs().mean().item()
        if moved > MAX_STEP:
            k = MAX_STEP / moved
            image.sub_(before).mul_(k).add_(before)
            opt.state[image]['t'] *= k


# The factor on the style weight per unit of strength above 1 (below 1: 1000). With 30 the
# judged style stopped growing over the last quarter (tubingen + starry_night, grey style
# ratio 0.299 / 0.275 / 0.244 / 0.212 / 0.212 at 1 / 1.25 / 1.5 / 1.75 / 2): ten times the
# style at 2 keeps every step of the slider a visible one (bench_quality's strength curve,
# docs/quality.md).
BOLDER = 10.0


@dataclass(frozen=True)
class Recipe:
    """A preset's losses: factors on the style weight of the Gram term and, for the
    nearest-neighbour term (neighbours.py), its weight per unit of style weight."""
    style: float = 1.0
    neighbours: float = 0.0
    photo: float = 0.0          # the photo's share in what the neighbour term matches from


# Best: the Gram term twice Normal's and the nearest-neighbour term at three fiftieths of the
# style weight (3 at the default 50), matched from the picture with a tenth of the photo in.
# Judged at 512 px, both style figures better than Normal's on the five shared pairs (by
# 0.008 / 0.012, edge F -0.003) and on nine pairs the tuning never saw (0.012 / 0.022, edge F
# -0.020; matched from the picture alone they lost 0.036). Normal pushed further (strength
# 1.25, where it was run) is no more stylised and keeps fewer edges (docs/quality.md, Best).
RECIPES = {'best': Recipe(style=2.0, neighbours=3 / 50, photo=0.1)}


def style_share(strength):
    """The factor on the style (and TV) weight: 1 at strength 1, a tenth each third less, 0
    at 0, BOLDER times at 2.

    The look of a result follows the log of the style/content ratio: halving the weight
    barely shows, so a linear slider would do nothing over most of its range. TV smooths
    the grain the style term adds, so it scales with it: at strength 0 only the content
    loss is left, which the content itself already minimises.
    """
    if strength <= 0:
        return 0.0
    return 1000.0 ** (strength - 1) if strength <= 1 else BOLDER ** (strength - 1)


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
        shares = kw.get('shares')
        if shares is None:
            matched = match_colours(content, style_ts, kw['style_weights'])
        else:           # each region recoloured to its own painting; the rest stays
            share = regions.resize(shares, content.shape[-2:])
            matched = content * (1 - share.sum(0, keepdim=True))
            for s, t in zip(share, style_ts):
                matched = matched + s[None] * match_colours(content, [t], [1.0])
        # the painting's palette is the most a start can take from it
        return content + min(1.0, kw['strength']) * (matched - content)
    if init == 'fast':
        return kw['fast_start'](content, kw['styles'])
    return content


def _style_tensors(styles, scale_size, style_scale, device, native=False, masks=None):
    """(paintings, their masks): the paintings at the scale's size times style_scale, and
    each one's painting mask at its size (None: all of it); native: never enlarged past
    their own size (an enlarged painting's texture is a blur, which its Grams would ask
    the picture for)."""
    size = max(16, round(scale_size * style_scale))
    tensors, mask_ts = [], []
    for s, m in zip(styles, regions.padded(masks, len(styles))):
        wh = imageio.working_size(s.size, min(size, max(s.size)) if native else size)
        t = imageio.to_tensor(imageio.resize(s, wh), device)
        m = regions.to_tensor(m, wh, device)
        reps = [1, 1, *(-(-32 // n) if n < 32 else 1 for n in t.shape[-2:])]
        tensors.append(repeat_min(t))
        mask_ts.append(None if m is None else m.repeat(*reps))
    return tensors, mask_ts


def _targets(vgg, painting, painting_masks, blend, layers, bf16, tile, share):
    """A scale's style targets: the blended Grams, or with style masks, RegionTargets."""
    if share is None:
        return style_grams(vgg, painting, blend, layers, bf16, tile, painting_masks)
    return RegionTargets(share, each_style_grams(vgg, painting, layers, bf16, tile,
                                                 painting_masks))


def _neighbour_samples(vgg, painting, painting_masks, blend, layers, bf16, tile, generator):
    """neighbours.sample of the scale's paintings; one larger than a tile is sampled from
    a tile of it (the same texture at the same scale in a tile's memory): the middle, or the
    middle of its painting mask."""
    layers = [n for n in neighbours.LAYERS if n in layers]
    masks = painting_masks if painting_masks is not None else [None] * len(painting)
    windows = [tiling.centre(p, tile, m) for p, m in zip(painting, masks)]
    with torch.no_grad():
        feats = [features(vgg, p, bf16) for p, _ in windows]
    return neighbours.sample(feats, blend, layers, generator, [m for _, m in windows])


def overlap(tile):
    """Tiles (memory.tile_side says how large) overlap by an eighth, 128 px at 1024: wider
    than the zero-padding artefacts at a tile's edge, which the feathering (tiling.py) hides."""
    return max(8, tile // 8)


def stylize_quality(content, styles, *, style_weights, strength, style_scale, preserve_colors,
                    size, preset, iterations, device, seed, init, init_image, optimizer,
                    content_weight, style_weight, tv_weight, content_layers, style_layers,
                    style_layer_weights, pooling, precision, model, cache_dir, callback, cancel,
                    log, style_masks=None, painting_masks=None, models=None, fast_start=None,
                    **_fast_only):
    """stylize(method='quality'): see nst_core.stylize for the options. models: the
    LoadedModels the VGGs are kept in (default: the process's); fast_start(content, styles):
    the start picture for init='fast' (the entry makes it: Fast is no part of this method).
    """
    dev = pick(device)
    generator = torch.Generator().manual_seed(seed)
    content = imageio.rgb(content)
    styles = [imageio.rgb(s) for s in styles]
    final_wh = imageio.working_size(content.size, size)
    content_full = imageio.to_tensor(imageio.resize(content, final_wh), dev)
    if preserve_colors == 'histogram':
        styles = [imageio.to_pil(match_histogram(imageio.to_tensor(s), content_full.cpu()))
                  for s in styles]
    load = dict(pooling=pooling, cache_dir=cache_dir, log=log, models=models)
    vgg = load_features(model, [*content_layers, *style_layers], **load).to(dev)
    bf16 = use_bf16(precision, dev)
    blend = style_weights or [1.0] * len(styles)
    # each style's share of each pixel, at the working size (None: the styles blended all over)
    share = regions.shares([regions.to_tensor(m, final_wh, dev)
                            for m in regions.padded(style_masks, len(styles))],
                           blend, final_wh[::-1]) if regions.given(style_masks) else None
    plan = schedule.plan(max(final_wh), preset, iterations)
    free = memory.available(dev)
    tiles = [memory.tile_side(imageio.working_size(final_wh, sc.size), sc.steps, optimizer,
                              free) for sc in plan]
    boxes = [tiling.grid(*imageio.working_size(final_wh, sc.size), tile, overlap(tile))
             for sc, tile in zip(plan, tiles)]
    for sc, scale_boxes, tile in zip(plan, boxes, tiles):
        if len(scale_boxes) > 1:
            log('tiles: %d px in %d tiles of %dx%d (tile side %d)' % (
                sc.size, len(scale_boxes), scale_boxes[0].width, scale_boxes[0].height, tile))
    last_wh = imageio.working_size(final_wh, plan[-1].size)
    enlarged = last_wh != final_wh
    tracker = Tracker(_stages(plan, boxes, final_wh if enlarged else None), callback, cancel)
    tracker.report(0, 0)
    recipe = RECIPES.get(preset, Recipe())
    loss_kw = dict(content_layers=content_layers, style_layers=style_layers,
                   style_layer_weights=style_layer_weights, content_weight=content_weight,
                   style_weight=style_weight * style_share(strength) * recipe.style,
                   tv_weight=tv_weight * style_share(strength),
                   neighbour_weight=style_weight * style_share(strength) * recipe.neighbours,
                   neighbour_photo=recipe.photo,
                   bf16=bf16)
    # the layout's photo is made as a run at the layout's size makes its own, so that a
    # larger picture is that run's picture refined (same strokes, same look at 512 px)
    layout_wh = imageio.working_size(final_wh, max(sc.size for sc in plan if not sc.refine))
    layout_photo = (content_full if layout_wh == final_wh else
                    imageio.to_tensor(imageio.resize(content, layout_wh), dev))
    image, below, stage = None, None, 0
    for sc, scale_boxes, tile in zip(plan, boxes, tiles):
        wh = imageio.working_size(final_wh, sc.size)
        target = _photo_at(content_full if sc.refine else layout_photo, wh)
        if sc.refine:
            # the picture below enlarged with the photo's detail of this size is the goal:
            # the octave adds the painting's texture of its size, not another layout
            start = detail.enlarge(target, below, image)
            scale_vgg, scale_kw = _refine_features(sc, vgg, model, load, loss_kw, dev)
            painting = _style_tensors(styles, sc.size, style_scale, dev, native=True,
                                      masks=painting_masks)
        else:
            if image is None:
                kw = dict(styles=styles, style_weights=blend, strength=strength,
                          fast_start=fast_start, shares=share)
                image = _initial(init, target, init_image, generator, kw)
            start = F.interpolate(image, size=wh[::-1], mode='bicubic',
                                  align_corners=False).clamp(0, 1)
            scale_vgg, scale_kw = vgg, loss_kw
            painting = _style_tensors(styles, sc.size, style_scale, dev, masks=painting_masks)
        grams = _targets(scale_vgg, *painting, blend, scale_kw['style_layers'], bf16, tile,
                         None if share is None else regions.resize(share, wh[::-1]))
        if loss_kw['neighbour_weight'] > 0:      # not at strength 0: no term to sample for
            scale_kw = dict(scale_kw, neighbour_samples=_neighbour_samples(
                scale_vgg, *painting, blend, scale_kw['style_layers'], bf16, tile, generator))
        image, stage = _optimise_scale(scale_vgg, start if sc.refine else target, start,
                                       grams, scale_kw, sc.steps, optimizer, scale_boxes,
                                       tile, tracker, stage)
        if sc.refine:
            image = keep_octave(start, image, below.shape[-2:])
        below = target
    start = None                 # whole canvases no longer needed (memory.CANVAS_PER_PIXEL)
    if enlarged:
        image = detail.enlarge(content_full, below, image,
                               report=lambda i, n: tracker.report(stage, i, total=n))
    if preserve_colors == 'luminance':
        image = luminance_transfer(image, content_full)
    return imageio.to_pil(image)


def _photo_at(photo, wh):
    if tuple(photo.shape[-2:]) == tuple(wh[::-1]):
        return photo
    return F.interpolate(photo, size=wh[::-1], mode='bicubic', align_corners=False,
                         antialias=True).clamp(0, 1)


# A refined octave above schedule.FULL_TRUNK_SIDE sees VGG up to the brushwork's layers,
# with the content held at the deepest of them.
SHALLOW_STYLE = ('relu1_1', 'relu2_1', 'relu3_1')
SHALLOW_CONTENT = ('relu3_1',)


def _refine_features(sc, vgg, model, load, loss_kw, dev):
    """The VGG and loss options of a refined octave: the layout's trunk, or above
    FULL_TRUNK_SIDE the shallow one; its style layers weighed equally unless the caller
    chose weights. The layout's falloff (relu1_1 weighing 256 times relu5_1) lays strokes
    from a photo; on an octave that only adds texture to strokes already laid it let
    relu1_1's colour statistics win, and the texture came out as round dots, a mosaic at
    100 % (two_wings + starry_night at 2560 px). Weighed equally the marks are elongated
    and curved like the painting's, judged alike at 512 px (grey style ratio 0.218 against
    0.221, edge F 0.491 against 0.484)."""
    kw = dict(loss_kw)
    if sc.size > schedule.FULL_TRUNK_SIDE:
        kw.update(content_layers=SHALLOW_CONTENT, style_layers=SHALLOW_STYLE,
                  style_layer_weights=None)
        vgg = load_features(model, [*SHALLOW_CONTENT, *SHALLOW_STYLE], **load).to(dev)
    if kw['style_layer_weights'] is None:
        kw['style_layer_weights'] = [1.0] * len(kw['style_layers'])
    return vgg, kw


def keep_octave(start, refined, below_hw):
    """`start` plus the part of what refining changed that is finer than the scale below.

    The layout was painted, tuned and judged at the scales below. Left whole, an octave's
    optimisation also moves what they hold (its style term, at a size the recipe was not
    tuned at, evens the strokes out into a finer texture): judged at 512 px, two_wings +
    starry_night came out less stylised than the layout (grey style ratio 0.243 against
    0.209). Keeping only the octave's own band, the coarse bands stay the layout's and the
    finest are the painting's texture and the photo's edges of this size.
    """
    change = refined - start
    low = resize(resize(change, tuple(below_hw)), tuple(change.shape[-2:]))
    return change.sub_(low).add_(start).clamp_(0, 1)


def _optimise_scale(vgg, goal, start, grams, loss_kw, steps, optimizer, boxes, tile, tracker,
                    stage):
    """One scale, whole or tile by tile: (its picture, the next progress stage)."""
    if len(boxes) == 1:
        out = _optimise_region(vgg, goal, start, grams, loss_kw, steps, optimizer,
                               _step_report(tracker, stage, None))
        return out, stage + 1
    image, fresh = start.clone(), start
    for box in boxes:
        region_start = tiling.start(image, fresh, box, overlap(tile))
        tile_grams = grams.crop(box) if isinstance(grams, RegionTargets) else grams
        out = _optimise_region(vgg, box.crop(goal), region_start, tile_grams, loss_kw, steps,
                               optimizer, _step_report(tracker, stage, image))
        tiling.paste(image, out, box, overlap(tile))
        stage += 1
    return image, stage


def _stages(plan, boxes, enlarge_to=None):
    """Progress stages: one per scale, or per tile where a scale runs in tiles (a step on
    the shallow trunk costs about half a whole one); and the enlargement to `enlarge_to`
    (w, h), if any, about a twentieth of a step at that size."""
    stages = []
    for i, (sc, scale_boxes) in enumerate(zip(plan, boxes)):
        shallow = 0.5 if sc.refine and sc.size > schedule.FULL_TRUNK_SIDE else 1.0
        for j, box in enumerate(scale_boxes):
            name = 'Scale %d/%d' % (i + 1, len(plan))
            if len(scale_boxes) > 1:
                name += ', tile %d/%d' % (j + 1, len(scale_boxes))
            stages.append((name, sc.steps, box.pixels * shallow))
    if enlarge_to is not None:
        bands = detail.count_bands(enlarge_to[1], enlarge_to[0])
        stages.append(('Adding detail', bands, enlarge_to[0] * enlarge_to[1] / bands / 20))
    return stages


def _optimise_region(vgg, target, start, grams, loss_kw, steps, optimizer, report):
    """`steps` of optimisation of one region (a whole scale or a tile) from `start`;
    report(step, loss, region): the region as it is now, without pad_min's padding."""
    h, w = target.shape[-2:]
    target = pad_min(target)
    if isinstance(grams, RegionTargets):
        grams = grams.padded(target.shape[-2:])
    loss_fn = GatysLoss(vgg, target, None, None, style_targets=grams, **loss_kw)
    out = optimise(pad_min(start), loss_fn, steps, optimizer,
                   lambda step, loss, image: report(step, loss, image[..., :h, :w]),
                   with_image=True)
    return out[..., :h, :w]          # drop pad_min's padding


def _step_report(tracker, stage, canvas):
    """report(step, loss, region) for stage `stage`: Progress with a picture of the region,
    or of `canvas` (a tiled scale: its finished tiles pasted, the others as they started)."""
    def report(step, loss, region):
        shown = region if canvas is None else canvas
        tracker.report(stage, step, loss, picture=lambda side: small_picture(shown, side))
    return report


def small_picture(image: torch.Tensor, side: int):
    """An RGB PIL copy of `image` (1, 3, h, w), longest side at most `side`: shrunk where it
    is, so a preview of a large canvas on the GPU moves a small picture, not the canvas."""
    with torch.no_grad():
        x = image.detach().float().clamp(0, 1)
        h, w = x.shape[-2:]
        if max(h, w) > side:
            k = side / max(h, w)
            x = F.interpolate(x, size=(max(1, min(side, round(h * k))),
                                       max(1, min(side, round(w * k)))),
                              mode='bilinear', align_corners=False, antialias=True)
        return imageio.to_pil(x)
