"""Batches: `python -m nst_core batch PHOTOS... --style S -o FOLDER` and nst_core.batch.

The network is a randomly initialised Magenta saved as a user model file (no weights
needed): these tests are about which files get written and what the user is told.
"""
import io

import pytest
from PIL import Image

from conftest import scene, stripes
from nst_core import batch, fast, loaded
from nst_core.models.arbitrary_style import ArbitraryStyleNet




@pytest.fixture
def photos(tmp_path):
    """A folder of three good photos, a truncated JPEG, a text file posing as a PNG and a
    note that is no picture at all (skipped: a folder gives only its pictures)."""
    folder = tmp_path / 'photos'
    folder.mkdir()
    for i, (w, h) in enumerate([(64, 48), (40, 60), (50, 50)]):
        scene(w, h, seed=i).save(folder / ('good%d.png' % i))
    buf = io.BytesIO()
    scene(64, 64).save(buf, 'JPEG')
    (folder / 'broken.jpg').write_bytes(buf.getvalue()[:len(buf.getvalue()) // 2])
    (folder / 'text.png').write_text('not a picture')
    (folder / 'notes.txt').write_text('holiday 2024')
    stripes(40, 40).save(tmp_path / 'style.png')
    return folder


def lines(stderr):
    return [line for line in stderr.splitlines() if line.strip()]


def fast_args(model):
    return ('--method', 'fast', '--model', model, '--size', '0', '--device', 'cpu')


def test_a_bad_file_among_good_ones_is_reported_and_the_others_written(photos, run_cli,
                                                                         model, tmp_path):
    out = tmp_path / 'out'
    missing = tmp_path / 'missing.jpg'
    proc = run_cli('batch', photos, missing, '--style', tmp_path / 'style.png', '-o', out,
                   *fast_args(model))
    assert proc.returncode == 1, proc.stderr
    errors = [line for line in lines(proc.stderr) if 'error:' in line]
    for name, words in [('broken.jpg', 'truncated'), ('text.png', 'not a readable image'),
                        ('missing.jpg', 'no such file')]:
        assert sum(name in line and words in line for line in errors) == 1, proc.stderr
    assert '3 of 6 photos failed' in errors[-1] and len(errors) == 4
    written = sorted(p.name for p in out.iterdir())
    assert written == ['good0.png', 'good1.png', 'good2.png']
    for i in range(3):
        src = Image.open(photos / ('good%d.png' % i))
        assert Image.open(out / ('good%d.png' % i)).size == src.size
    assert sum(line.startswith('wrote ') for line in lines(proc.stderr)) == 3


def test_all_written_exits_0(photos, run_cli, model, tmp_path):
    for bad in ('broken.jpg', 'text.png'):
        (photos / bad).unlink()
    out = tmp_path / 'new' / 'out'                    # created, parents too
    proc = run_cli('batch', photos, '-s', tmp_path / 'style.png', '-o', out, '--format', 'jpg',
                   *fast_args(model))
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ['good0.jpg', 'good1.jpg', 'good2.jpg']
    assert 'wrote 3 pictures to' in lines(proc.stderr)[-1]


@pytest.mark.parametrize('case, words', [
    ('output is a file', 'exists and is not a folder'),
    ('output inside a file', 'cannot write to this folder'),
    ('no pictures', 'no pictures found'),
    ('bad style', 'not a readable image'),
    ('overwrite', 'would overwrite the photo itself'),
])
def test_a_batch_that_cannot_start_says_why_and_does_nothing(photos, run_cli, model, tmp_path,
                                                             case, words):
    style, out, inputs = tmp_path / 'style.png', tmp_path / 'out', [photos]
    if case == 'output is a file':
        out.write_text('x')
    elif case == 'output inside a file':
        (tmp_path / 'file').write_text('x')
        out = tmp_path / 'file' / 'out'
    elif case == 'no pictures':
        inputs = [tmp_path / 'empty']
        inputs[0].mkdir()
    elif case == 'bad style':
        style = photos / 'text.png'
    elif case == 'overwrite':
        out = photos
    before = sorted(p.name for p in photos.iterdir())
    proc = run_cli('batch', *inputs, '--style', style, '-o', out, *fast_args(model))
    assert proc.returncode == 2
    assert len(lines(proc.stderr)) == 1 and words in proc.stderr, proc.stderr
    assert sorted(p.name for p in photos.iterdir()) == before
    assert not (out.is_dir() and any(out.iterdir()) and out != photos)


def test_a_result_that_cannot_be_written_is_reported_and_the_rest_go_on(photos, model,
                                                                          tmp_path):
    (photos / 'broken.jpg').unlink()
    (photos / 'text.png').unlink()
    out = tmp_path / 'out'
    (out / 'good1.png').mkdir(parents=True)           # a folder where a result should go
    said, warned = [], []
    summary = batch.stylize_all([photos], [Image.open(tmp_path / 'style.png')], out,
                                dict(method='fast', model=str(model), size=0, device='cpu'),
                                say=said.append, warn=warned.append)
    assert not summary.ok and [p.name for p, _ in summary.failed] == ['good1.png']
    assert len(warned) == 1 and 'good1.png' in warned[0] and 'cannot write' in warned[0]
    assert sorted(p.name for p in summary.written) == ['good0.png', 'good2.png']
    assert all((out / n).is_file() for n in ('good0.png', 'good2.png'))


def test_one_network_one_progress_bar_for_the_batch(photos, model, tmp_path, monkeypatch):
    made = []

    class Counted(ArbitraryStyleNet):
        def __init__(self, *a, **k):
            made.append(1)
            super().__init__(*a, **k)

    monkeypatch.setattr(fast, 'ArbitraryStyleNet', Counted)
    monkeypatch.setattr(loaded, 'PROCESS', loaded.LoadedModels())
    seen = []
    summary = batch.stylize_all([photos / 'good0.png', photos / 'good1.png',
                                 photos / 'good2.png'],
                                [Image.open(tmp_path / 'style.png')], tmp_path / 'out',
                                dict(method='fast', model=str(model), size=0, device='cpu'),
                                callback=seen.append, say=lambda line: None)
    assert summary.ok and len(summary.written) == 3
    assert made == [1]
    fractions = [p.fraction for p in seen]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    assert {p.stage.split(' ')[0] for p in seen} == {'1/3', '2/3', '3/3'}
    assert seen[-1].stage.startswith('3/3 good2.png: ')


def test_repeated_names_get_a_number(tmp_path):
    a, b = tmp_path / 'x' / 'a.png', tmp_path / 'y' / 'a.jpg'
    pairs = batch.targets([a, b, tmp_path / 'a.tif'], tmp_path / 'out')
    assert [out.name for _, out in pairs] == ['a.png', 'a-2.png', 'a-3.png']
