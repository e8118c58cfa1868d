import threading

import numpy as np
import pytest
import torch
from PIL import Image
from torch.nn import functional as F

from conftest import edge_bands, scene, shared_image, stripes
from nst_core import Cancelled, colour, imageio, quality, schedule
from nst_core.features import load_features
from nst_core.quality import GatysLoss, keep_octave, optimise
from nst_core.api import stylize

TINY = dict(model='tiny', size=48, preset='draft')
LAYERS = dict(content_layers=('relu4_2',),
              style_layers=('relu1_1', 'relu2_1', 'relu3_1', 'relu4_1', 'relu5_1'))


def arr(img):
    return np.asarray(img, dtype=np.float64)


def test_same_seed_same_picture_other_seed_other_picture():
    a = stylize(scene(), [stripes()], init='noise', seed=3, **TINY)
    b = stylize(scene(), [stripes()], init='noise', seed=3, **TINY)
    c = stylize(scene(), [stripes()], init='noise', seed=4, **TINY)
    assert np.array_equal(arr(a), arr(b))
    assert not np.array_equal(arr(a), arr(c))


def test_output_has_the_working_size():
    out = stylize(scene(90, 60), [stripes()], **TINY)
    assert out.size == (48, 32) and out.mode == 'RGB'
    full = stylize(scene(50, 30), [stripes()], model='tiny', size=0, iterations=2)
    assert full.size == (50, 30)


def test_strength_zero_keeps_the_content():
    content = scene(48, 36)
    out = stylize(content, [stripes()], strength=0.0, **TINY)
    assert np.abs(arr(out) - arr(content)).mean() < 2.0
    styled = stylize(content, [stripes()], strength=1.0, **TINY)
    assert np.abs(arr(styled) - arr(content)).mean() > 5.0


def test_style_share_rises_evenly_through_1_to_the_top():
    from nst_core.api import STRENGTH_MAX
    from nst_core.quality import style_share
    ladder = [style_share(s / 8 * STRENGTH_MAX) for s in range(9)]
    assert ladder[0] == 0 and style_share(1.0) == 1.0
    assert all(a < b for a, b in zip(ladder, ladder[1:]))
    # even on a log scale above 1: each quarter multiplies by the same factor
    above = [style_share(s) for s in (1.0, 1.25, 1.5, 1.75, 2.0)]
    ratios = [b / a for a, b in zip(above, above[1:])]
    assert max(ratios) == pytest.approx(min(ratios)) and ratios[0] > 1.5


def test_strength_above_1_moves_further_from_the_content():
    content = scene(48, 36)
    away = [np.abs(arr(stylize(content, [stripes()], strength=s, init='content', **TINY))
                   - arr(content)).mean() for s in (1.0, 2.0)]
    assert away[1] > away[0] * 1.2


def test_palette_start_takes_the_painting_s_colours_at_most_once():
    content, style = scene(48, 36), stripes()
    kw = dict(TINY, style_weight=0.0, iterations=1, init='palette')
    full = arr(stylize(content, [style], **kw)).mean((0, 1))
    bolder = arr(stylize(content, [style], strength=2.0, **kw)).mean((0, 1))
    assert np.abs(bolder - full).max() < 3


def test_palette_init_starts_from_the_styles_colours_as_far_as_strength_asks():
    content, style = scene(48, 36), stripes()
    style_mean = arr(style).mean((0, 1))
    kw = dict(TINY, style_weight=0.0, iterations=1)    # the init, barely optimised
    plain = arr(stylize(content, [style], init='content', **kw)).mean((0, 1))
    full = arr(stylize(content, [style], init='palette', **kw)).mean((0, 1))
    half = arr(stylize(content, [style], init='palette', strength=0.5, **kw)).mean((0, 1))
    assert np.abs(full - style_mean).max() < 6
    assert np.abs(plain - style_mean).max() > 30
    assert np.allclose(half, (plain + full) / 2, atol=4)


def test_optimisation_lowers_the_style_loss():
    vgg = load_features('tiny', [*LAYERS['content_layers'], *LAYERS['style_layers']])
    content = imageio.to_tensor(scene(48, 48))
    style = imageio.to_tensor(stripes(48, 48))
    loss_fn = GatysLoss(vgg, content, [style], [1.0], style_layer_weights=None,
                        content_weight=1.0, style_weight=1e3, tv_weight=0.0, **LAYERS)
    _, before = loss_fn(content)
    seen = []
    out = optimise(content, loss_fn, 40, 'lbfgs', lambda step, loss: seen.append(loss))
    _, after = loss_fn(out)
    assert len(seen) == 40
    assert after['style'] < before['style'] / 5
    assert seen[-1] < seen[0]


@pytest.mark.parametrize('optimizer', ['lbfgs', 'adam'])
def test_both_optimisers_make_progress(optimizer):
    vgg = load_features('tiny', [*LAYERS['content_layers'], *LAYERS['style_layers']])
    content = imageio.to_tensor(scene(32, 32))
    loss_fn = GatysLoss(vgg, content, [imageio.to_tensor(stripes(32, 32))], [1.0],
                        style_layer_weights=None, content_weight=1.0, style_weight=1e3,
                        tv_weight=0.0, **LAYERS)
    seen = []
    optimise(content, loss_fn, 30, optimizer, lambda step, loss: seen.append(loss))
    assert seen[-1] < 0.5 * seen[0]


def test_blend_weights_move_the_result_between_styles():
    content = scene(48, 48)
    red, blue = stripes(seed=1), Image_blue()
    only_red = stylize(content, [red, blue], style_weights=[1, 0], **TINY)
    only_blue = stylize(content, [red, blue], style_weights=[0, 1], **TINY)
    red_alone = stylize(content, [red], **TINY)
    assert np.array_equal(arr(only_red), arr(red_alone))
    assert arr(only_blue)[..., 2].mean() > arr(only_red)[..., 2].mean()


def Image_blue():
    img = np.zeros((64, 64, 3), np.uint8)
    img[..., 2] = 230
    img[::4] = (20, 20, 120)
    from PIL import Image
    return Image.fromarray(img)


def test_progress_reports_and_cancel():
    seen = []
    cancel = threading.Event()

    def callback(p):
        seen.append(p)
        if len(seen) == 5:
            cancel.set()
    with pytest.raises(Cancelled):
        stylize(scene(), [stripes()], callback=callback, cancel=cancel, **TINY)
    assert len(seen) == 5
    assert seen[0].fraction == 0 and seen[-1].fraction > 0
    assert seen[-1].stage == 'Scale 1/1' and seen[-1].total == schedule.PRESETS['draft'][0]


def test_luminance_preservation_keeps_the_content_colours():
    content = scene(48, 36)
    out = stylize(content, [stripes()], preserve_colors='luminance', **TINY)
    iq_out = colour.rgb_to_yiq(imageio.to_tensor(out))[:, 1:]
    iq_in = colour.rgb_to_yiq(imageio.to_tensor(content))[:, 1:]
    plain = colour.rgb_to_yiq(imageio.to_tensor(stylize(content, [stripes()], **TINY)))[:, 1:]
    assert (iq_out - iq_in).abs().mean() < 0.5 * (plain - iq_in).abs().mean()


def test_histogram_preservation_runs_and_differs_from_plain():
    plain = stylize(scene(), [stripes()], **TINY)
    matched = stylize(scene(), [stripes()], preserve_colors='histogram', **TINY)
    assert not np.array_equal(arr(plain), arr(matched))


@pytest.mark.parametrize('kwargs, words', [
    (dict(strength=2.5), 'strength'),
    (dict(size=-1), 'size'),
    (dict(style_scale=0), 'style_scale'),
    (dict(style_weights=[1, 2]), '2 style weights given for 1 styles'),
    (dict(init='image'), 'init_image'),
    (dict(style_layer_weights=[1, 2]), '2 style layer weights given for 5 style layers'),
    (dict(content_layers=('relu9_9',)), 'unknown vgg16 layer'),
    (dict(device='cuda:7' if torch.cuda.is_available() else 'cuda'), 'not available'),
])
def test_bad_options_raise_clear_errors(kwargs, words):
    from nst_core.device import DeviceError
    with pytest.raises((ValueError, DeviceError), match=words):
        stylize(scene(), [stripes()], **{**TINY, **kwargs})


@pytest.mark.slow
def test_real_vgg_transfers_style_and_keeps_content():
    """Normal with the real weights at 256 px: the style loss falls by a large factor while the
    content stays far closer to the photo than an unrelated picture is."""
    from nst_core.api import options
    o = {k: p.default for k, p in options().items()}
    content = shared_image('tubingen.jpg')
    style = shared_image('starry_night.jpg')
    vgg = load_features('auto', [*o['content_layers'], *o['style_layers']])
    c = imageio.to_tensor(imageio.resize(content, imageio.working_size(content.size, 256)))
    s = imageio.to_tensor(imageio.resize(style, imageio.working_size(style.size, 256)))
    loss_fn = GatysLoss(vgg, c, [s], [1.0], style_layer_weights=None,
                        content_weight=o['content_weight'], style_weight=o['style_weight'],
                        tv_weight=o['tv_weight'], content_layers=o['content_layers'],
                        style_layers=o['style_layers'])
    _, before = loss_fn(c)
    # an unrelated picture of the same size: what "content lost" looks like in this loss
    _, unrelated = loss_fn(imageio.to_tensor(imageio.resize(style, c.shape[:1:-1])))
    out = stylize(content, [style], size=256, preset='normal')
    _, after = loss_fn(imageio.to_tensor(out))
    assert after['style'] < before['style'] / 10, (before, after)
    assert after['content'] < 0.5 * unrelated['content'], (after, unrelated)


def test_keep_octave_keeps_the_coarse_bands_of_the_start():
    start = imageio.to_tensor(scene(96, 72))
    refined = (start + 0.2 * torch.rand(start.shape, generator=torch.Generator().manual_seed(1))
               + 0.1).clamp(0, 1)        # noise, and a shift of everything
    kept = keep_octave(start, refined.clone(), (36, 48))
    low = F.interpolate(kept - start, size=(36, 48), mode='area')
    assert abs(low.mean()) < 0.002                 # the shift of 0.1 is gone (a coarse band)
    assert (kept - start).abs().mean() > 0.03      # the fine noise stays


def test_a_large_output_refines_octaves_above_the_layout(monkeypatch):
    """Outputs larger than the layout get it painted at LAYOUT_SIDE, then refined octaves,
    then enlarged with the photo's detail to their own size, whatever it is. (The content
    layer is relu1_1: the tiny random network's relu4_2 keeps little of a 64 px picture.)"""
    monkeypatch.setattr(schedule, 'LAYOUT_SIDE', 64)
    seen = []
    out = stylize(scene(300, 200), [stripes()], model='tiny', size=0, preset='draft',
                  content_layers=('relu1_1',), callback=seen.append)
    assert out.size == (300, 200)
    assert [s.stage for s in seen][-1] == 'Adding detail' and seen[-1].fraction == 1
    assert {s.stage for s in seen} >= {'Scale 1/2', 'Scale 2/2'}      # 64 px, then 150 px
    styled, photo = arr(out).mean(-1), arr(scene(300, 200)).mean(-1)
    assert np.abs(styled - photo).mean() > 5.0
    assert np.corrcoef(styled.ravel(), photo.ravel())[0, 1] > 0.5


@pytest.mark.slow
def test_a_large_result_keeps_the_look_of_the_same_run_at_512_px():
    """Real VGG, Draft: at 1600 px (octave 800 refined, then enlarged) the picture seen at
    512 px is the 512 px picture's, with the photo's finer detail on top: far closer to it
    than the photo is, and not a blur at full size."""
    content = shared_image('picos.jpg').resize((1600, 1200), Image.LANCZOS)
    style = shared_image('starry_night.jpg')
    small = arr(stylize(content, [style], size=512, preset='draft'))
    large = stylize(content, [style], size=0, preset='draft')
    assert large.size == (1600, 1200)
    seen = arr(large.resize((512, 384), Image.LANCZOS))
    photo = arr(content.resize((512, 384), Image.LANCZOS))
    assert np.abs(seen - small).mean() < 0.35 * np.abs(photo - small).mean()
    enlarged = arr(Image.fromarray(small.astype(np.uint8)).resize((1600, 1200), Image.BICUBIC))
    fine = (lambda a: np.abs(np.diff(a.mean(-1), axis=1)).mean())
    assert fine(arr(large)) > 1.5 * fine(enlarged)



@pytest.mark.slow
def test_a_flat_grey_photo_gets_no_frame():
    """Real VGG, the defaults on a 512 x 384 flat grey layer: on the mean over three
    paintings every edge's outer 6 px are within 4 grey levels of the next 24 (measured:
    +2.4 top, +2.4 bottom, -1.1 left, +3.0 right; one painting's edge reaches 5). VGG's zero
    padding is where a flat picture's texture starts: Draft's fewer steps at 384 px leave
    the right edge 5 levels light on that mean (docs/quality.md)."""
    photo = Image.new('RGB', (512, 384), (128, 128, 128))
    bands = []
    for name in ('starry_night.jpg', 'the_scream.jpg', 'shipwreck.jpg'):
        out = stylize(photo, [shared_image(name)])
        assert out.size == (512, 384)
        bands.append(edge_bands(np.asarray(out.convert('L'), dtype=np.float64)))
    mean = np.mean(bands, 0)
    assert np.abs(mean).max() < 4, mean

def test_lbfgs_steps_are_bounded_and_still_converge():
    """L-BFGS's second step on this quadratic is the exact one, 0.8 long on average: it is
    cut to quality.MAX_STEP, and as its record is cut with it the next steps stay exact."""
    goal = torch.full((1, 3, 16, 16), 0.8)
    pictures = []
    out = optimise(torch.zeros_like(goal), lambda x: (((x - goal) ** 2).mean(), {}), 14,
                   'lbfgs', lambda step, loss, x: pictures.append(x.detach().clone()),
                   with_image=True)
    moves = [(b - a).abs().mean().item() for a, b in zip(pictures, pictures[1:])]
    assert max(moves) <= quality.MAX_STEP + 1e-6
    assert sum(m > 0.9 * quality.MAX_STEP for m in moves) >= 5       # it was cut, many times
    assert (out - goal).abs().max() < 1e-3


# --- init='fast': Quality starts from Fast's picture, painted with the caller's options ---------

def random_fast_models():
    """A LoadedModels holding a random Fast network where the 'auto' one would be."""
    from nst_core import fast
    from nst_core.loaded import LoadedModels
    from nst_core.models.arbitrary_style import ArbitraryStyleNet
    torch.manual_seed(0)
    net = ArbitraryStyleNet()
    for name, p in net.named_parameters():       # gammas near 1: a picture, not a flat grey
        if name.endswith('gamma.bias'):
            p.data.add_(1.0)
    models = LoadedModels()
    models.get(fast.network_key('auto', None), lambda: net)
    return models


def test_init_fast_passes_fast_s_options_on(monkeypatch):
    from nst_core import fast
    from nst_core.api import stylize_with
    given = []
    real = fast.start_picture
    monkeypatch.setattr(fast, 'start_picture',
                        lambda *a, **kw: given.append(kw) or real(*a, **kw))
    models = random_fast_models()
    photo, painting = Image.new('RGB', (64, 48), (200, 120, 40)), Image.new('RGB', (40, 40))
    job = dict(method='quality', init='fast', model='tiny', preset='draft', iterations=1,
               size=0, device='cpu')
    stylize_with(models, photo, [painting], **job)
    stylize_with(models, photo, [painting], style_scale=0.5, detail=0.0, tile_size=256, **job)
    assert [(kw['style_scale'], kw['detail'], kw['tile_size']) for kw in given] == \
        [(1.0, 1.0, 2048), (0.5, 0.0, 256)]
    # detail is Fast's alone: it reaches Quality's picture only through the start (on a
    # canvas smaller than the photo, style_scale 12, where there is detail to put back)
    textured = Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 64, 3),
                                                                 dtype=np.uint8))
    fine, coarse = (stylize_with(models, textured, [painting], style_scale=12.0, detail=d, **job)
                    for d in (1.0, 0.0))
    assert fine.tobytes() != coarse.tobytes()
