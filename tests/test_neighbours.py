"""Best's nearest-neighbour term (nst_core/neighbours.py): the matching, the sampling, the loss
by region, and Best end to end (tiny VGG for plumbing; the real one where pictures matter)."""
import numpy as np
import pytest
import torch

from conftest import scene, shared_image, stripes
from nst_core import imageio, memory, neighbours, quality
from nst_core.api import options, stylize
from nst_core.features import features, load_features
from nst_core.quality import GatysLoss, optimise
from test_regions import flat as flat_image, half

TINY = dict(model='tiny', size=48, preset='best')
LAYERS = dict(content_layers=('relu4_2',),
              style_layers=('relu1_1', 'relu2_1', 'relu3_1', 'relu4_1', 'relu5_1'))


def test_match_picks_the_nearest_painting_feature_by_centred_cosine():
    g = torch.Generator().manual_seed(0)
    painting = torch.rand(50, 16, generator=g)
    picture = painting[[7, 3, 3, 42]] * 2.0 + 0.01 * torch.rand(4, 16, generator=g)
    targets, centre = neighbours.match(picture, painting)
    ref = torch.nn.functional.normalize(painting - centre, dim=1)
    assert torch.allclose(targets, ref[[7, 3, 3, 42]])
    # a feature at its own target is at distance 0; the others are not
    assert torch.allclose(neighbours.distance(painting[[7, 3]], targets[:2], centre),
                          torch.zeros(2), atol=1e-5)
    assert (neighbours.distance(painting[[0, 1]], targets[:2], centre) > 0.01).all()


def test_match_works_in_chunks(monkeypatch):
    g = torch.Generator().manual_seed(1)
    painting, picture = torch.rand(30, 8, generator=g), torch.rand(21, 8, generator=g)
    whole, _ = neighbours.match(picture, painting)
    monkeypatch.setattr(neighbours, 'CHUNK', 4)
    chunked, _ = neighbours.match(picture, painting)
    assert torch.equal(whole, chunked)


def test_samples_keep_the_count_the_mask_and_the_blend():
    g = torch.Generator().manual_seed(0)
    left = torch.zeros(1, 4, 8, 8)
    left[..., :4] = 1.0                              # features inside the mask are all ones
    right = torch.full((1, 4, 8, 8), 5.0)
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., :4] = 1.0
    s = neighbours.sample([{'a': left}, {'a': right}], [1.0, 3.0], ['a'], g,
                          masks=[mask, None], count=20)
    assert s.each[0]['a'].shape == (20, 4) and (s.each[0]['a'] == 1).all()
    pooled = s.pooled('a')
    assert len(pooled) == 5 + 15 and (pooled[5:] == 5).all()


def test_a_mask_thinner_than_the_layer_s_cells_samples_its_strongest_cells():
    feats = torch.arange(16.0).reshape(1, 1, 4, 4).repeat(1, 2, 1, 1)   # a 4x4 layer
    line = torch.zeros(1, 1, 16, 16)
    line[..., :, 5] = 1.0                  # one pixel wide: a quarter of each cell it crosses
    s = neighbours.sample([{'a': feats}], [1.0], ['a'], torch.Generator().manual_seed(0),
                          masks=[line])
    assert sorted(s.each[0]['a'][:, 0].tolist()) == [1.0, 5.0, 9.0, 13.0]   # column 1


def random_term():
    """(painting's features, its term, a random picture's features generator), at relu3_1."""
    g = torch.Generator().manual_seed(0)
    painting = {'relu3_1': torch.rand(1, 6, 4, 4, generator=g)}
    term = neighbours.NeighbourTargets(neighbours.sample([painting], [1.0], ['relu3_1'], g),
                                       ['relu3_1'])
    return painting, term, lambda: {'relu3_1': torch.rand(1, 6, 4, 4, generator=g)}


def test_targets_are_matched_on_the_first_picture_and_again_every_rematch_calls():
    _, term, picture = random_term()
    first, other = picture(), picture()
    at_first = term.loss(first)
    held = [term.loss(other) for _ in range(neighbours.REMATCH - 1)]
    # until the next matching `other` is measured against the targets `first` found...
    assert all(torch.equal(h, held[0]) for h in held)
    # ... then against its own, which are nearer
    assert term.loss(other) < held[0]
    regional = neighbours.NeighbourTargets(term.samples, ['relu3_1'])
    nowhere = torch.zeros(1, 1, 4, 4)
    assert regional.loss(first, shares=nowhere) == 0
    everywhere = neighbours.NeighbourTargets(term.samples, ['relu3_1'])
    assert torch.allclose(everywhere.loss(first, shares=torch.ones(1, 1, 4, 4)), at_first)


def test_a_query_is_asked_for_only_when_a_matching_is_due():
    painting, term, random_picture = random_term()
    picture, asked = random_picture(), []
    query = lambda: asked.append(1) or painting
    losses = [term.loss(picture, query=query) for _ in range(2 * neighbours.REMATCH)]
    assert len(asked) == 2
    # matched from the painting itself, the targets are the painting's own features: the
    # picture is measured against them, not against its own nearest ones
    assert losses[0] > neighbours.NeighbourTargets(term.samples, ['relu3_1']).loss(picture)


def tiny_term(content_weight=0.0, style_weight=0.0, neighbour_photo=0.0):
    """(photo, GatysLoss): a tiny VGG's loss on a 48 px scene with only (or mostly) the
    nearest-neighbour term, its samples from stripes."""
    vgg = load_features('tiny', [*LAYERS['content_layers'], *LAYERS['style_layers']])
    content = imageio.to_tensor(scene(48, 48))
    style = imageio.to_tensor(stripes(48, 48))
    with torch.no_grad():
        samples = neighbours.sample([features(vgg, style, False)], [1.0], neighbours.LAYERS,
                                    torch.Generator().manual_seed(0))
    return content, GatysLoss(vgg, content, [style], [1.0], style_layer_weights=None,
                              content_weight=content_weight, style_weight=style_weight,
                              tv_weight=0.0, neighbour_samples=samples, neighbour_weight=1.0,
                              neighbour_photo=neighbour_photo, **LAYERS)


def test_with_the_photo_s_share_the_term_matches_from_the_photo_mixed_in():
    def targets(picture, photo):
        _, loss_fn = tiny_term(1.0, 1.0, photo)
        loss_fn(picture)
        return loss_fn.neighbours.targets['relu3_1'][0]

    content = imageio.to_tensor(scene(48, 48))
    noise = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(1))
    # all photo: whatever the picture, the targets are the photo's matches
    assert torch.equal(targets(noise, 1.0), targets(content, 1.0))
    assert torch.equal(targets(noise, 1.0), targets(content, 0.0))
    # none: the picture's own; a share: others than the picture's own
    own, mixed = targets(noise, 0.0), targets(noise, 0.5)
    assert not torch.equal(own, targets(content, 0.0)) and not torch.equal(mixed, own)


def test_the_term_falls_as_the_picture_is_optimised():
    content, loss_fn = tiny_term()
    _, before = loss_fn(content)
    out = optimise(content, loss_fn, 30, 'lbfgs', lambda step, loss: None)
    _, after = loss_fn(out)
    # a random VGG's features of a photo reach no painting feature exactly: it levels out
    # near two thirds (0.265 -> 0.18 in 30 steps, 0.167 in 80)
    assert after['neighbours'] < 0.75 * before['neighbours'], (before, after)


def test_only_best_adds_the_term_and_strength_zero_still_keeps_the_photo():
    recipes = {p: quality.RECIPES.get(p, quality.Recipe()) for p in ('draft', 'normal', 'best')}
    assert recipes['best'].neighbours > 0 and recipes['best'].style > 1
    assert 0 < recipes['best'].photo < 1
    assert recipes['normal'] == recipes['draft'] == quality.Recipe()
    content = scene(48, 36)
    out = stylize(content, [stripes()], strength=0, init='content', **TINY)
    assert np.abs(np.asarray(out, np.float64) - np.asarray(content, np.float64)).mean() < 2


def test_best_differs_from_normal_with_the_same_steps(monkeypatch):
    monkeypatch.setitem(quality.schedule.PRESETS, 'best', quality.schedule.PRESETS['normal'])
    monkeypatch.setitem(quality.schedule.REFINE, 'best', quality.schedule.REFINE['normal'])
    normal = stylize(scene(), [stripes()], **dict(TINY, preset='normal'))
    best = stylize(scene(), [stripes()], **TINY)
    assert np.abs(np.asarray(normal, np.float64) - np.asarray(best, np.float64)).mean() > 1


def test_best_with_regions_blends_and_tiles(monkeypatch):
    monkeypatch.setattr(memory, 'QUALITY_TILE', 96)
    content, seen = scene(224, 160), []
    out = stylize(content, [stripes(), flat_image((230, 40, 30))], model='tiny', size=0,
                  preset='best', iterations=3, style_masks=[half(224, 160), None],
                  painting_masks=[half(80, 80), None], callback=lambda p: seen.append(p.stage))
    assert out.size == content.size and any('tile' in s for s in seen)
    blended = stylize(scene(), [stripes(), flat_image((230, 40, 30))], style_weights=[1, 3],
                      **TINY)
    assert blended.size == (48, 36)


@pytest.mark.slow
def test_real_vgg_best_lowers_its_loss_and_keeps_the_content():
    """Best with the real weights at 256 px: its own loss (Grams and neighbours) falls by a
    large factor from the photo, and the content stays far closer to the photo than an
    unrelated picture is. (Pictures from samples/, so it runs on any clone.)"""
    o = {k: p.default for k, p in options().items()}
    content, style = shared_image('chelsea.jpg'), shared_image('starry_night.jpg')
    vgg = load_features('auto', [*o['content_layers'], *o['style_layers']])
    c = imageio.to_tensor(imageio.resize(content, imageio.working_size(content.size, 256)))
    s = imageio.to_tensor(imageio.resize(style, imageio.working_size(style.size, 256)))
    recipe = quality.RECIPES['best']
    with torch.no_grad():
        samples = neighbours.sample([features(vgg, s, False)], [1.0], neighbours.LAYERS,
                                    torch.Generator().manual_seed(0))

    def best_loss():          # matched afresh on the picture it first sees, as each scale is
        return GatysLoss(vgg, c, [s], [1.0], style_layer_weights=None,
                         content_weight=o['content_weight'],
                         style_weight=o['style_weight'] * recipe.style,
                         tv_weight=o['tv_weight'], neighbour_samples=samples,
                         neighbour_weight=o['style_weight'] * recipe.neighbours, **LAYERS)
    loss_fn = best_loss()
    photo_total, before = loss_fn(c)
    out = imageio.to_tensor(stylize(content, [style], size=256, preset='best'))
    total, after = loss_fn(out)
    assert after['style'] < before['style'] / 10, (before, after)
    assert total < photo_total / 5, (photo_total, total)
    _, unrelated = best_loss()(imageio.to_tensor(imageio.resize(style, c.shape[:1:-1])))
    assert after['content'] < 0.5 * unrelated['content'], (after, unrelated)
