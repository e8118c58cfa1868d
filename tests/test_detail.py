"""Resampling in bands (resample.py) and the detail put back on the enlarged canvas (detail.py).

No network here: the "paintings" are made up so that what the detail layer must do is known.
"""
import numpy as np
import pytest
import torch
from PIL import Image

from nst_core import detail, imageio, resample
from conftest import scene


def photo(w=240, h=180, seed=0):
    return imageio.to_tensor(scene(w, h, seed))


def grey(t):
    return detail.luminance(t).expand(-1, 3, -1, -1).contiguous()


# --- resampling -----------------------------------------------------------------------------

@pytest.mark.parametrize('src, dst', [((180, 240), (61, 83)), ((61, 83), (500, 700)),
                                      ((180, 240), (180, 97)), ((7, 5), (64, 3))])
def test_resize_is_pils_lanczos(src, dst):
    rng = np.random.default_rng(0)
    a = rng.random(src, dtype=np.float32)
    ours = resample.resize(torch.from_numpy(a)[None, None], dst)[0, 0].numpy()
    pil = np.asarray(Image.fromarray(a, 'F').resize(dst[::-1], Image.LANCZOS))
    assert np.abs(ours - pil).max() < 1e-4


def test_bands_of_rows_are_the_rows_of_a_whole_resize():
    x = torch.rand(1, 7, 61, 83)
    r = resample.Resize((61, 83), (700, 911))
    whole = r(x)
    cols = r.cols(x)
    bands = torch.cat([r.rows(cols, y, min(700, y + 37)) for y in range(0, 700, 37)], 2)
    assert whole.shape == (1, 7, 700, 911)
    assert (bands - whole).abs().max() < 1e-6


def test_resize_to_the_same_size_is_the_identity():
    x = torch.rand(1, 3, 20, 30)
    assert resample.resize(x, (20, 30)) is x
    assert torch.equal(resample.Resize((20, 30), (20, 30)).rows(x, 5, 9), x[..., 5:9, :])


# --- detail ---------------------------------------------------------------------------------

def test_a_painting_that_is_the_photo_gets_all_the_photos_detail_back():
    # grey, so every channel follows the luminance with slope 1: the output must be the photo
    content = grey(photo(480, 360))
    small = resample.resize(content, (90, 120))
    out = detail.enlarge(content, small, small)
    soft = detail.enlarge(content, small, small, amount=0)
    assert (out - content).abs().max() < 1e-4
    assert (soft - content).abs().mean() > 0.01                 # the canvas alone is soft


def test_a_painting_that_ignores_the_photo_gets_none_of_its_detail():
    content = photo(480, 360)
    small = resample.resize(content, (90, 120))
    flat = torch.full_like(small, 0.3)
    out = detail.enlarge(content, small, flat)
    assert (out - 0.3).abs().max() < 1e-5


def test_the_gain_follows_the_painting_locally():
    # left half painted like the photo, right half painted over with a flat colour; the photo
    # has contrast everywhere (where it is flat the fit falls back to the picture-wide slope)
    small = grey(photo(120, 90)) * 0.7 + 0.3 * torch.rand(1, 1, 90, 120)
    painted = small.clone()
    painted[..., 60:] = 0.5
    gain = detail.local_gain(detail.luminance(small), painted)
    assert gain[..., :, :50].mean() > 0.9 and gain[..., :, 70:].abs().max() < 0.2


def test_amount_0_is_the_canvas_enlarged_and_a_larger_canvas_only_shrinks():
    content = photo(480, 360)
    small = resample.resize(content, (90, 120))
    painted = torch.rand_like(small)
    assert torch.equal(detail.enlarge(content, small, painted, amount=0),
                       resample.resize(painted, (360, 480)).clamp(0, 1))
    big = resample.resize(content, (720, 960))
    out = detail.enlarge(content, big, resample.resize(painted, (720, 960)))
    assert (out - resample.resize(resample.resize(painted, (720, 960)), (360, 480)).clamp(0, 1)
            ).abs().max() < 1e-6


def test_bands_equal_one_pass_and_finish_runs_on_each_band():
    content = photo(500, 333)
    small = resample.resize(content, (70, 105))
    painted = small.flip(-1) * 0.5 + 0.25 * torch.rand_like(small)
    whole = detail.enlarge(content, small, painted, band_pixels=10 ** 9)
    seen = []
    banded = detail.enlarge(content, small, painted, band_pixels=500 * 17,
                            report=lambda done, total: seen.append((done, total)))
    assert len(seen) == detail.count_bands(333, 500, 500 * 17) == 20
    assert seen[-1] == (20, 20)
    assert (banded - whole).abs().max() < 1e-5
    back = detail.enlarge(content, small, painted, band_pixels=500 * 17,
                          finish=lambda band, photo_band: photo_band)
    assert torch.equal(back, content)
