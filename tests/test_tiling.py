"""Quality in tiles: the tile plan, the feathered paste, style Grams read in cells, the
memory estimate that knows about tiles, and tiled runs against whole ones."""
import threading

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import scene, stripes
from nst_core import Cancelled, imageio, losses, memory, tiling
from nst_core.features import load_features, style_grams
from nst_core.api import stylize

LAYERS = ('relu1_1', 'relu2_1', 'relu3_1', 'relu4_1', 'relu5_1')


@settings(max_examples=200, deadline=None)
@given(length=st.integers(1, 5000), tile=st.integers(64, 1200), frac=st.integers(2, 8))
def test_spans_cover_overlap_and_stay_within_the_tile(length, tile, frac):
    overlap = tile // frac
    spans = tiling.spans(length, tile, overlap)
    assert spans[0][0] == 0 and spans[-1][1] == length
    for (a0, a1), (b0, b1) in zip(spans, spans[1:]):
        assert a1 - b0 >= overlap            # neighbours share at least the overlap
        assert b0 > a0                       # and each adds something new
    assert all(0 < e - s <= tile for s, e in spans)
    assert len({e - s for s, e in spans}) == 1     # equal sizes: equal cost per tile


def test_grid_is_rows_of_spans():
    boxes = tiling.grid(2048, 1536, 1024, 128)
    assert len(boxes) == 6 and boxes[0] == tiling.Box(0, 0, 768, 832)
    assert boxes[-1].x1 == 2048 and boxes[-1].y1 == 1536
    assert tiling.grid(800, 600, 1024, 128) == [tiling.Box(0, 0, 800, 600)]


def test_feather_ramps_only_towards_earlier_tiles_and_pastes_partition():
    w, h, ov = 300, 200, 32
    boxes = tiling.grid(w, h, 128, ov)
    for b in boxes:
        m = tiling.feather(b, ov)
        assert m.max() == 1 and m.min() > 0           # every pixel of a tile counts a bit
        assert (m[..., :, 0].max() < 0.05) == (b.x0 > 0)    # fades in from the left ...
        assert (m[..., 0, :].max() < 0.05) == (b.y0 > 0)    # ... and from above
        assert m[..., -1, -1] == 1                    # right and bottom: the next tiles'
    # tiles painting one colour in grid order leave exactly that colour everywhere
    canvas = torch.zeros(1, 3, h, w)
    for b in boxes:
        tiling.paste(canvas, torch.full((1, 3, b.height, b.width), 0.7), b, ov)
    assert torch.allclose(canvas, torch.full_like(canvas, 0.7))


def test_paste_hands_over_gradually_across_the_overlap():
    w, h, ov = 256, 64, 64
    left, right = tiling.grid(w, h, 160, ov)
    canvas = torch.zeros(1, 1, h, w)
    tiling.paste(canvas, torch.zeros(1, 1, left.height, left.width), left, ov)
    tiling.paste(canvas, torch.ones(1, 1, right.height, right.width), right, ov)
    row = canvas[0, 0, 0]
    steps = (row[1:] - row[:-1]).abs()
    assert steps.max() < 1.5 / ov          # a ramp, not a step
    assert row[right.x0] < 0.05 and row[left.x1 - 1] > 0.95


def test_style_grams_in_cells_match_the_whole_picture():
    vgg = load_features('tiny', LAYERS)
    style = imageio.to_tensor(stripes(300, 220, period=10))
    whole = style_grams(vgg, [style], [1.0], LAYERS, False)
    cells = style_grams(vgg, [style], [1.0], LAYERS, False, tile=128)
    for n in LAYERS:
        rel = (cells[n] - whole[n]).norm() / whole[n].norm()
        assert rel < 0.05, (n, rel)


def test_memory_estimate_knows_about_tiles():
    big = (6000, 4000)
    need = memory.needed('quality', big)
    # canvases of 24 Mpx and the smallest tiles: a few GB, not the 120 GB a whole pass needs
    assert need < 3 * memory.GB
    assert memory.check('quality', big, 8 * memory.GB) == 6000
    with pytest.raises(memory.NotEnoughMemory) as e:
        memory.check('quality', big, 1.2 * memory.GB)
    side = e.value.details['largest_side']
    assert 0 < side < 6000
    assert memory.needed('quality', (side, side * 2 // 3)) <= 1.2 * memory.GB * memory.HEADROOM
    # the tile side shrinks with free memory, and stops at the cap
    sides = [memory.tile_side(big, 20, 'lbfgs', gb * memory.GB) for gb in (2, 3, 5, 64)]
    assert sides == sorted(sides) and sides[-1] == memory.QUALITY_TILE
    assert sides[0] >= memory.MIN_TILE


def _tiled(monkeypatch, tile):
    monkeypatch.setattr(memory, 'QUALITY_TILE', tile)


def _gram_distance(a, b, vgg):
    fa, fb = (vgg(imageio.to_tensor(x)) for x in (a, b))
    return sum(((losses.gram(fa[n]) - losses.gram(fb[n])).norm() / losses.gram(fb[n]).norm())
               .item() for n in LAYERS) / len(LAYERS)


def test_tiled_run_looks_like_the_whole_run(monkeypatch):
    content, style = scene(224, 160), stripes(160, 160)
    kw = dict(model='tiny', size=0, preset='draft', seed=1)
    whole = stylize(content, [style], **kw)
    seen = []
    _tiled(monkeypatch, 96)
    tiled = stylize(content, [style], callback=lambda p: seen.append(p.stage), **kw)
    assert any('tile 6/6' in s for s in seen)          # it really ran in tiles
    vgg = load_features('tiny', LAYERS)
    # as stylised as the whole run, judged by the style Grams, and not the photo
    d_tiled = _gram_distance(tiled, style, vgg)
    d_whole = _gram_distance(whole, style, vgg)
    d_photo = _gram_distance(content, style, vgg)
    assert d_tiled < 1.25 * d_whole and d_tiled < 0.7 * d_photo, (d_tiled, d_whole, d_photo)


def test_no_seam_at_tile_borders(monkeypatch):
    _tiled(monkeypatch, 96)
    out = np.asarray(stylize(scene(224, 160), [stripes(160, 160)], model='tiny', size=0,
                             preset='draft'), dtype=np.float64)
    boxes = tiling.grid(224, 160, 96, 12)
    cols = sorted({b.x0 for b in boxes if b.x0} | {b.x1 for b in boxes if b.x1 < 224})
    step = np.abs(np.diff(out, axis=1)).mean(axis=(0, 2))      # per column boundary
    inside = np.median(step)
    assert max(step[c - 1] for c in cols) < 2.5 * inside, (step[[c - 1 for c in cols]], inside)


def test_cancel_between_tiles_stops_within_a_step(monkeypatch):
    _tiled(monkeypatch, 96)
    cancel = threading.Event()
    stages = []

    def callback(p):
        stages.append(p.stage)
        if 'tile 2/' in p.stage:
            cancel.set()
    with pytest.raises(Cancelled):
        stylize(scene(224, 160), [stripes()], model='tiny', size=0, preset='draft',
                callback=callback, cancel=cancel)
    assert stages[-1].endswith('tile 2/6') and sum('tile 2/' in s for s in stages) == 1


def test_a_tile_starts_without_the_step_its_neighbours_leave():
    """Where the left tile's result ends (its right edge, inside the next tile) the canvas
    steps from refined to unrefined; the next tile's start hands over across the overlap
    instead, so nothing starts with a step the optimiser would keep."""
    fresh = torch.zeros(1, 3, 40, 100)
    canvas = fresh.clone()
    left, right = tiling.grid(100, 40, 60, 20)
    tiling.paste(canvas, torch.ones(1, 3, 40, left.width), left, 20)
    begin = tiling.start(canvas, fresh, right, 20)[0, 0, 0]
    canvas_row = right.crop(canvas)[0, 0, 0]
    assert canvas_row.diff().abs().max() == 1            # the step the canvas has
    assert torch.allclose(begin[0], canvas_row[0], atol=0.05)   # the neighbour at the edge
    assert torch.equal(begin[20:], right.crop(fresh)[0, 0, 0, 20:])   # fresh inside
    assert begin.diff().abs().max() <= 1 / 20 + 1e-6      # no step in between
    whole = tiling.grid(100, 40, 200, 20)[0]
    assert torch.equal(tiling.start(canvas, fresh, whole, 20), fresh)


def test_centre_window_is_the_middle_or_the_mask_s_middle_and_clamped():
    image = torch.arange(100.0).reshape(1, 1, 10, 10)
    window, none = tiling.centre(image, 4)
    assert none is None and torch.equal(window, image[..., 3:7, 3:7])
    assert torch.equal(tiling.centre(image, 16)[0], image)     # a side that fits: all of it
    mask = torch.zeros(1, 1, 10, 10)
    mask[..., 8:, 0:2] = 1                                     # the bottom-left corner
    window, wmask = tiling.centre(image, 4, mask)
    assert torch.equal(window, image[..., 6:10, 0:4]) and wmask.sum() == 4
