"""Styles by region (nst_core/regions.py): shares, guided Grams, and each method painting each
style where its mask says. Plumbing with tiny random networks; the pictures with the real
weights (slow)."""
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import cached_weights, scene, shared_image, stripes
from nst_core import Cancelled, imageio, losses, memory, regions, stylize
from nst_core.features import each_style_grams, features, load_features
from nst_core.regions import MaskError

LAYERS = ('relu1_1', 'relu2_1', 'relu3_1')
TINY = dict(model='tiny', size=0, preset='draft', iterations=4, seed=3)


def half(w, h, top=True, soft=0):
    """An L mask: white over the top half (or the bottom), a ramp `soft` px wide between."""
    y = np.arange(h, dtype=np.float64)[:, None] - h / 2
    ramp = np.clip(0.5 - y / max(soft, 1e-9), 0, 1) if soft else (y < 0).astype(float)
    m = ramp if top else 1 - ramp
    return Image.fromarray(np.broadcast_to(m * 255 + 0.5, (h, w)).astype(np.uint8))


def flat(colour, size=(64, 64)):
    return Image.new('RGB', size, colour)


# ---------------------------------------------------------------- shares and Grams


def test_shares_split_blend_and_leave_the_rest_alone():
    top = regions.to_tensor(half(8, 8), (8, 8), 'cpu')
    bottom = regions.to_tensor(half(8, 8, top=False), (8, 8), 'cpu')
    split = regions.shares([top, bottom], [1.0, 3.0], (8, 8))
    assert torch.equal(split[0], top[0]) and torch.equal(split[1], bottom[0])  # weights moot
    both = regions.shares([top, None], [1.0, 3.0], (8, 8))   # None: everywhere
    assert torch.allclose(both[:, 0, 0, 0], torch.tensor([0.25, 0.75]))
    assert torch.allclose(both[:, 0, 7, 0], torch.tensor([0.0, 1.0]))
    alone = regions.shares([top], [1.0], (8, 8))             # the bottom keeps the photo
    assert alone[0, 0, 7].sum() == 0 and alone[0, 0, 0].min() == 1


def test_a_region_gram_is_the_gram_of_its_own_pixels():
    feats = torch.rand(1, 5, 8, 6)
    share = torch.zeros(1, 1, 32, 24)
    share[..., :16, :] = 1          # the top half on the image = the top 4 rows at 1/4
    guided = regions.guided_gram(feats, share)
    assert torch.allclose(guided, losses.gram(feats[..., :4, :]), atol=1e-6)
    assert torch.allclose(regions.guided_gram(feats, torch.ones(1, 1, 32, 24)),
                          losses.gram(feats), atol=1e-6)


def test_painting_mask_grams_in_cells_match_the_whole_painting():
    vgg = load_features('tiny', LAYERS)
    style = imageio.to_tensor(stripes(300, 220, period=10))
    mask = regions.to_tensor(half(300, 220, soft=40), (300, 220), 'cpu')
    whole, = each_style_grams(vgg, [style], LAYERS, False, masks=[mask])
    cells, = each_style_grams(vgg, [style], LAYERS, False, tile=128, masks=[mask])
    for n in LAYERS:
        rel = (cells[n] - whole[n]).norm() / whole[n].norm()
        assert rel < 0.05, (n, rel)


def test_a_painting_mask_reads_only_its_part():
    vgg = load_features('tiny', LAYERS)
    two = Image.new('RGB', (64, 64), (230, 40, 30))
    two.paste((20, 60, 220), (0, 32, 64, 64))              # red above, blue below
    masked, = each_style_grams(vgg, [imageio.to_tensor(two)], LAYERS, False,
                               masks=[regions.to_tensor(half(64, 64), (64, 64), 'cpu')])
    red, = each_style_grams(vgg, [imageio.to_tensor(flat((230, 40, 30)))], LAYERS, False)
    blue, = each_style_grams(vgg, [imageio.to_tensor(flat((20, 60, 220)))], LAYERS, False)
    for n in LAYERS:
        assert losses.relative_mse(masked[n], red[n]) < losses.relative_mse(masked[n], blue[n])


# ---------------------------------------------------------------- stylize() plumbing


def test_no_masks_is_todays_picture_bit_for_bit():
    content, styles = scene(), [stripes(), flat((200, 30, 30))]
    plain = stylize(content, styles, **TINY)
    for masks in ([None, None], [None], []):
        out = stylize(content, styles, style_masks=masks, painting_masks=[None], **TINY)
        assert out.tobytes() == plain.tobytes(), masks


@pytest.mark.parametrize('method', ['quality', 'fast'])
def test_one_style_masked_everywhere_paints_as_without_a_mask(method, monkeypatch):
    content, style = scene(), stripes()
    kw = TINY if method == 'quality' else dict(method='fast', size=0)
    if method == 'fast':
        _random_fast(monkeypatch)
    white = Image.new('L', content.size, 255)
    plain = np.asarray(stylize(content, [style], **kw), dtype=np.float64)
    masked = np.asarray(stylize(content, [style], style_masks=[white], **kw), dtype=np.float64)
    assert np.abs(plain - masked).mean() < 1.0, np.abs(plain - masked).mean()


def test_quality_outside_every_mask_stays_the_photo():
    content = scene(64, 64)
    out = stylize(content, [flat((230, 40, 30))], style_masks=[half(64, 64)],
                  init='content', **TINY)
    photo, got = (np.asarray(x, dtype=np.float64) for x in (content, out))
    # the bottom pays for no style: the content loss keeps it the photo (VGG's reach
    # across the border aside); the top moves
    assert np.abs(got[44:] - photo[44:]).mean() < 0.3 * np.abs(got[:20] - photo[:20]).mean()


def test_quality_regions_in_tiles(monkeypatch):
    monkeypatch.setattr(memory, 'QUALITY_TILE', 96)
    content = scene(224, 160)
    seen = []
    out = stylize(content, [stripes(), flat((230, 40, 30))], model='tiny', size=0,
                  preset='draft', style_masks=[half(224, 160), half(224, 160, top=False)],
                  callback=lambda p: seen.append(p.stage))
    assert any('tile 6/6' in s for s in seen) and out.size == content.size


def test_cancel_with_regions_stops_within_a_step():
    cancel, seen = threading.Event(), []

    def callback(p):
        seen.append(p)
        if len(seen) == 3:
            cancel.set()
    with pytest.raises(Cancelled):
        stylize(scene(), [stripes(), flat((0, 0, 200))], style_masks=[half(96, 72)],
                callback=callback, cancel=cancel, **TINY)
    assert len(seen) == 3


@pytest.mark.parametrize('masks, says', [
    (lambda c: [half(*c.size)] * 3, '3 style masks given for 2 styles'),
    (lambda c: [half(10, 10)], 'style mask 1 is 10x10, not 96x72'),
    (lambda c: [None, Image.new('RGB', c.size)], 'style mask 2 is RGB'),
    (lambda c: [Image.new('L', c.size, 0)], 'black everywhere'),
    (lambda c: ['sky.png'], 'style mask 1 is not an image'),
])
def test_bad_style_masks_are_refused_before_any_work(masks, says):
    content, steps = scene(), []
    with pytest.raises(MaskError, match=says):
        stylize(content, [stripes(), flat((1, 2, 3))], style_masks=masks(content),
                callback=steps.append, **TINY)
    assert steps == []


def test_bad_painting_masks_are_refused():
    with pytest.raises(MaskError, match='painting mask 1 is 96x72, not 80x80'):
        stylize(scene(), [stripes()], painting_masks=[half(96, 72)], **TINY)
    with pytest.raises(MaskError, match='painting mask 1 is black everywhere'):
        stylize(scene(), [stripes()], painting_masks=[Image.new('L', (80, 80), 0)], **TINY)


def test_a_trained_network_takes_one_mask_and_no_painting_mask(tmp_path):
    from nst_core.models.transformer import TransformerNet
    path = tmp_path / 'net.pth'
    torch.manual_seed(0)
    torch.save(TransformerNet().state_dict(), path)
    content = scene(64, 64)
    kw = dict(method='trained', trained_model=str(path), size=0)
    out = np.asarray(stylize(content, [], style_masks=[half(64, 64)], **kw), dtype=np.float64)
    photo = np.asarray(content, dtype=np.float64)
    assert np.array_equal(out[40:].round(), photo[40:])       # below the mask: the photo
    assert np.abs(out[:24] - photo[:24]).mean() > 5
    with pytest.raises(MaskError, match='2 style masks given for 1 trained network'):
        stylize(content, [], style_masks=[half(64, 64)] * 2, **kw)
    with pytest.raises(MaskError, match='painting masks'):
        stylize(content, [], painting_masks=[half(64, 64)], **kw)


def _random_fast(monkeypatch):
    """Fast on a random network (plumbing: no download)."""
    from nst_core import fast
    from nst_core.models.arbitrary_style import ArbitraryStyleNet
    torch.manual_seed(0)
    net = ArbitraryStyleNet().eval()
    monkeypatch.setattr(fast, 'load_network', lambda *a, **k: net)


def test_fast_soft_mask_blends_and_hard_mask_keeps_its_edge(monkeypatch):
    from nst_core import fast
    from nst_core.models.arbitrary_style import ArbitraryStyleNet
    torch.manual_seed(0)
    net = ArbitraryStyleNet().eval()
    content = scene(96, 96)
    a, b = stripes(), flat((230, 40, 30))
    only_a = fast.paint_photo(net, content, [a], size=0)
    only_b = fast.paint_photo(net, content, [b], size=0)
    hard = fast.paint_photo(net, content, [a, b], size=0,
                            style_masks=[half(96, 96), half(96, 96, top=False)])
    assert torch.allclose(hard[..., :48, :], only_a[..., :48, :], atol=1e-5)
    assert torch.allclose(hard[..., 48:, :], only_b[..., 48:, :], atol=1e-5)
    soft = fast.paint_photo(net, content, [a, b], size=0,
                            style_masks=[half(96, 96, soft=32), half(96, 96, False, 32)])
    mid = soft[..., 48, :]          # half way down the ramp: half of each
    assert torch.allclose(mid, (only_a[..., 48, :] + only_b[..., 48, :]) / 2, atol=0.02)


# ---------------------------------------------------------------- real pictures


def _style_distance(picture, painting, vgg):
    """Relative Gram error of a picture against a painting on VGG's shallow layers."""
    with torch.no_grad():
        fp = features(vgg, imageio.to_tensor(picture), False)
        fs = features(vgg, imageio.to_tensor(painting), False)
        return sum(losses.relative_mse(losses.gram(fp[n]), losses.gram(fs[n])).item()
                   for n in LAYERS) / len(LAYERS)


@pytest.mark.slow
@pytest.mark.parametrize('method', ['quality', 'fast'])
def test_each_half_is_painted_in_its_own_painting(method):
    cached_weights('vgg16-caffe', 'magenta')
    photo = shared_image('chelsea.jpg')
    photo = photo.resize((256, round(256 * photo.height / photo.width)))
    w, h = photo.size
    starry, scream = shared_image('starry_night.jpg'), shared_image('the_scream.jpg')
    kw = dict(method=method, size=0, seed=0)
    if method == 'quality':
        kw['preset'] = 'draft'
    out = stylize(photo, [starry, scream], style_masks=[half(w, h), half(w, h, top=False)],
                  **kw)
    vgg = load_features('auto', LAYERS)
    top, bottom = out.crop((0, 0, w, h // 2 - 8)), out.crop((0, h // 2 + 8, w, h))
    paintings = [p.resize((w, round(w * p.height / p.width))) for p in (starry, scream)]
    d_top = [_style_distance(top, p, vgg) for p in paintings]
    d_bottom = [_style_distance(bottom, p, vgg) for p in paintings]
    assert d_top[0] < d_top[1] and d_bottom[1] < d_bottom[0], (d_top, d_bottom)


def test_rest_is_where_no_other_mask_is():
    sky = regions.to_tensor(half(8, 8, soft=4), (8, 8), 'cpu')
    split = regions.shares([sky, regions.REST], [1.0, 1.0], (8, 8))
    assert torch.allclose(split.sum(0), torch.ones(1, 8, 8))
    assert torch.allclose(split[1], 1 - sky[0])
    out = stylize(scene(), [stripes(), flat((9, 9, 9))],
                  style_masks=[half(96, 72), regions.REST], **TINY)
    same = stylize(scene(), [stripes(), flat((9, 9, 9))],
                   style_masks=[half(96, 72), half(96, 72, top=False)], **TINY)
    assert out.tobytes() == same.tobytes()


@pytest.mark.parametrize('masks, says', [
    ([regions.REST], "'rest', but no other style has a mask"),
    ([half(96, 72), regions.REST], "another style paints everywhere"),
    ([Image.new('L', (96, 72), 255), regions.REST, None][:2] + [Image.new('L', (96, 72), 9)],
     "the 'rest' is nowhere"),
])
def test_a_rest_that_is_nowhere_or_everywhere_is_refused(masks, says):
    styles = [stripes(), flat((1, 2, 3)), flat((200, 0, 0))]
    with pytest.raises(MaskError, match=says):
        stylize(scene(), styles, style_masks=masks, **TINY)


@pytest.mark.slow
@pytest.mark.parametrize('method', ['quality', 'fast'])
def test_a_soft_mask_leaves_no_step_at_its_border(method):
    """The seam figure of bench_quality_sizes on the mask's border: no line across the
    picture where the styles meet stands out more than the lines inside either region."""
    cached_weights('vgg16-caffe', 'magenta')
    photo = shared_image('coffee.jpg')
    photo = photo.resize((256, round(256 * photo.height / photo.width)))
    w, h = photo.size
    kw = dict(method=method, size=0, seed=0, preset='draft')
    out = stylize(photo, [shared_image('starry_night.jpg'), shared_image('the_scream.jpg')],
                  style_masks=[half(w, h, soft=32), regions.REST], **kw)
    img = np.asarray(out, dtype=np.float64)
    steps = np.abs(np.diff(img, axis=0)).mean(axis=(1, 2))      # per row boundary
    border = steps[h // 2 - 16:h // 2 + 16]
    inside = np.r_[steps[8:h // 2 - 24], steps[h // 2 + 24:-8]]
    assert border.max() <= inside.max(), (border.max(), inside.max())
