"""Styles by region from the shell (issue 24): `stylize ... --style-masks sky.png -` and
`--painting-masks`, the same in `batch`, and how mask files are read (nst_core/maskfiles.py).

Fast with a randomly initialised Magenta saved as a user model file (no weights needed, as
tests/test_batch.py): a style mask that leaves half the photo out must leave that half
exactly the photo, and the shell must paint what the library paints with the same masks.
"""
import io

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import scene, stripes
from nst_core import maskfiles, stylize
from nst_core.imageio import ImageError
from nst_core.regions import MaskError

W, H = 48, 32




def fast(model):
    return dict(method='fast', model=str(model), size=0, device='cpu')


def fast_args(model):
    return ('--method', 'fast', '--model', model, '--size', '0', '--device', 'cpu')


def half(w=W, h=H, value=255):
    """A hard mask: the left half white (value), the right half black."""
    a = np.zeros((h, w), np.uint8)
    a[:, : w // 2] = value
    return Image.fromarray(a)


@pytest.fixture
def files(tmp_path):
    scene(W, H).save(tmp_path / 'photo.png')
    stripes(40, 40).save(tmp_path / 'a.png')
    scene(30, 30, seed=4).save(tmp_path / 'b.png')
    half().save(tmp_path / 'left.png')
    top = np.zeros((40, 40), np.uint8)
    top[:20] = 255
    Image.fromarray(top).save(tmp_path / 'top40.png')
    return tmp_path


def errors(stderr):
    return [line for line in stderr.splitlines() if 'error:' in line]


# ---- stylize -------------------------------------------------------------------------------

QUALITY = dict(method='quality', model='tiny', preset='draft', iterations=2, seed=3,
               device='cpu', size=0)


@pytest.fixture
def one_thread(monkeypatch):
    """The same sums in the same order here and in the CLI's process: the same picture."""
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _args(options):
    return [w for k, v in options.items() for w in ('--' + k.replace('_', '-'), v)]


def test_stylize_with_masks_and_dashes_paints_what_the_library_paints(files, run_cli,
                                                                      one_thread):
    """Style a on the left half, b everywhere ('-'); a read from the top of its painting, b
    from all of it ('-'): the file is the library's picture with those masks, the left one
    given as grey saved in RGBA (its alpha ignored). Quality on the tiny random VGG, whose
    picture depends on the paintings (a random Fast's hardly does)."""
    grey = np.asarray(half())
    Image.fromarray(np.stack([grey, grey, grey, np.full_like(grey, 7)], -1), 'RGBA').save(
        files / 'left_rgba.png')
    common = (files / 'photo.png', files / 'a.png', files / 'b.png', *_args(QUALITY))
    proc = run_cli('stylize', *common, '--style-masks', files / 'left_rgba.png', '-',
                   '--painting-masks', files / 'top40.png', '-', '-o', files / 'out.png')
    assert proc.returncode == 0, proc.stderr
    want = stylize(Image.open(files / 'photo.png'), [Image.open(files / 'a.png'),
                                                     Image.open(files / 'b.png')],
                   style_masks=[half(), None], painting_masks=[Image.open(files / 'top40.png')],
                   **QUALITY)
    got = np.asarray(Image.open(files / 'out.png'), np.int16)
    assert np.array_equal(got, np.asarray(want, np.int16))
    # each option did something: without the painting mask, or without any mask, the
    # picture is another
    for other, masks in [('no_painting_mask.png', ['--style-masks', files / 'left.png', '-']),
                         ('no_masks.png', [])]:
        proc = run_cli('stylize', *common, *masks, '-o', files / other)
        assert proc.returncode == 0, proc.stderr
        assert not np.array_equal(got, np.asarray(Image.open(files / other), np.int16)), other


def test_where_no_mask_reaches_the_photo_stays_itself(files, run_cli, model):
    out = files / 'out.png'
    proc = run_cli('stylize', files / 'photo.png', files / 'a.png', '--style-masks',
                   files / 'left.png', '-o', out, *fast_args(model))
    assert proc.returncode == 0, proc.stderr
    got, photo = (np.asarray(Image.open(p), np.int16) for p in (out, files / 'photo.png'))
    assert np.array_equal(got[:, W // 2:], photo[:, W // 2:])
    assert np.abs(got[:, : W // 2] - photo[:, : W // 2]).mean() > 5


def _bad(files, case):
    """(extra command-line words, what the one error line says) for each bad mask."""
    if case == 'wrong size':
        return (['--style-masks', files / 'top40.png'],
                'style mask %s is 40x40 but the photo %s is 48x32: a style mask must have the '
                'size of its photo' % (files / 'top40.png', files / 'photo.png'))
    if case == 'all black':
        Image.new('L', (W, H), 0).save(files / 'black.png')
        return (['--style-masks', files / 'black.png'],
                'style mask %s is black everywhere: its style would be painted nowhere'
                % (files / 'black.png'))
    if case == 'not greyscale':
        grey = np.asarray(half())
        Image.fromarray(np.stack([grey, grey // 2, grey], -1)).save(files / 'colour.png')
        return (['--style-masks', files / 'colour.png'],
                'style mask %s is not greyscale (its red, green and blue differ)'
                % (files / 'colour.png'))
    if case == 'more masks than styles':
        return (['--style-masks', files / 'left.png', '-', files / 'left.png'],
                "--style-masks: 3 masks given for 2 styles: give at most one per style")
    if case == 'painting mask of the wrong size':
        return (['--painting-masks', '-', files / 'top40.png'],
                'painting mask %s is 40x40 but the painting %s is 30x30: a painting mask must '
                'have the size of its painting' % (files / 'top40.png', files / 'b.png'))
    if case == 'more painting masks than styles':
        return (['--painting-masks', '-', '-', '-'],
                '--painting-masks: 3 masks given for 2 styles')
    if case == 'all-black painting mask':
        Image.new('L', (40, 40), 0).save(files / 'black40.png')
        return (['--painting-masks', files / 'black40.png'],
                'painting mask %s is black everywhere: there is no painting to read'
                % (files / 'black40.png'))
    if case == 'missing file':
        return (['--style-masks', files / 'nope.png'], '%s: no such file' % (files / 'nope.png'))
    if case == 'not an image':
        (files / 'text.png').write_text('not a picture')
        return (['--style-masks', files / 'text.png'],
                '%s: not a readable image' % (files / 'text.png'))
    raise AssertionError(case)


BAD = ['wrong size', 'all black', 'not greyscale', 'more masks than styles',
       'painting mask of the wrong size', 'more painting masks than styles',
       'all-black painting mask', 'missing file', 'not an image']


@pytest.mark.parametrize('case', BAD)
def test_a_bad_mask_is_one_clear_line_and_nothing_is_written(files, run_cli, model, case):
    extra, words = _bad(files, case)
    out = files / 'out.png'
    proc = run_cli('stylize', files / 'photo.png', files / 'a.png', files / 'b.png', *extra,
                   '-o', out, *fast_args(model))
    assert proc.returncode == 2, proc.stderr
    [line] = errors(proc.stderr)
    assert line.startswith('nst_core: error: ' + words), line
    assert not out.exists()


def test_a_trained_network_takes_one_style_mask_and_no_painting_mask(files, run_cli):
    """Refused on the names, before the network file is even looked at."""
    out = files / 'out.png'
    two = run_cli('stylize', files / 'photo.png', '--method', 'trained', '--trained-model',
                  files / 'none.pth', '--style-masks', files / 'left.png', '-', '-o', out)
    assert two.returncode == 2, two.stderr
    assert errors(two.stderr) == [
        "nst_core: error: --style-masks: 2 masks given for the trained network (one mask: "
        "where it paints): give at most one per style, in the styles' order ('-' for a style "
        "without one)"]
    painting = run_cli('stylize', files / 'photo.png', '--method', 'trained', '--trained-model',
                       files / 'none.pth', '--painting-masks', files / 'top40.png', '-o', out)
    assert painting.returncode == 2, painting.stderr
    assert errors(painting.stderr) == [
        'nst_core: error: --painting-masks: a trained network is its own style: it has no '
        'painting to take a part of']
    assert not out.exists()


# ---- batch ---------------------------------------------------------------------------------

def test_batch_masks_serve_every_photo_and_a_photo_of_another_size_fails_alone(
        files, run_cli, model):
    photos = files / 'photos'
    photos.mkdir()
    for i in range(3):
        scene(W, H, seed=i).save(photos / ('p%d.png' % i))
    scene(40, 40, seed=9).save(photos / 'square.png')
    out = files / 'out'
    proc = run_cli('batch', photos, '-s', files / 'a.png', files / 'b.png', '-o', out,
                   '--style-masks', files / 'left.png', '-', '--painting-masks',
                   files / 'top40.png', *fast_args(model))
    assert proc.returncode == 1, proc.stderr
    lines = errors(proc.stderr)
    assert lines[0] == ('nst_core: error: style mask %s is 48x32 but the photo %s is 40x40: a '
                        'style mask must have the size of its photo'
                        % (files / 'left.png', photos / 'square.png'))
    assert '1 of 4 photos failed' in lines[-1] and len(lines) == 2
    assert sorted(p.name for p in out.iterdir()) == ['p0.png', 'p1.png', 'p2.png']
    want = stylize(Image.open(photos / 'p1.png'), [Image.open(files / 'a.png'),
                                                   Image.open(files / 'b.png')],
                   style_masks=[half(), None], painting_masks=[Image.open(files / 'top40.png')],
                   **fast(model))
    got = np.asarray(Image.open(out / 'p1.png'), np.int16)
    assert np.abs(got - np.asarray(want, np.int16)).max() <= 1


@pytest.mark.parametrize('case', ['all black', 'not greyscale', 'more masks than styles',
                                  'painting mask of the wrong size'])
def test_a_batch_with_a_bad_mask_does_not_start(files, run_cli, model, case):
    extra, words = _bad(files, case)
    photos = files / 'photos'
    photos.mkdir()
    scene(W, H).save(photos / 'p.png')
    out = files / 'out'
    proc = run_cli('batch', photos, '-s', files / 'a.png', files / 'b.png', '-o', out, *extra,
                   *fast_args(model))
    assert proc.returncode == 2, proc.stderr
    [line] = errors(proc.stderr)
    assert line.startswith('nst_core: error: ' + words), line
    assert not out.exists() or not list(out.iterdir())


# ---- reading mask files --------------------------------------------------------------------

def _saved(image, fmt='PNG', **kw):
    buf = io.BytesIO()
    image.save(buf, fmt, **kw)
    buf.seek(0)
    return buf


@pytest.mark.parametrize('form', ['L png', 'L jpeg', 'RGB png', 'RGB jpeg', 'RGBA png',
                                  'LA png', 'P png', '1 png', 'I;16 png'])
def test_grey_in_any_form_reads_as_the_same_mask(form, tmp_path):
    ramp = np.tile(np.linspace(0, 255, W).round().astype(np.uint8), (H, 1))
    grey = Image.fromarray(ramp)
    mode, fmt = form.split()
    if mode == 'RGB':
        image = grey.convert('RGB')
    elif mode == 'RGBA':
        image = Image.fromarray(np.dstack([ramp, ramp, ramp, ramp[::-1]]), 'RGBA')
    elif mode == 'LA':
        image = Image.fromarray(np.dstack([ramp, ramp[::-1]]), 'LA')
    elif mode == 'P':
        image = grey.convert('P', palette=Image.ADAPTIVE, colors=256)
    elif mode == '1':
        image = half().convert('1')
    elif mode == 'I;16':
        image = Image.fromarray(ramp.astype(np.uint16) * 257)
    else:
        image = grey
    path = tmp_path / ('m.' + fmt)
    image.save(path, 'JPEG' if fmt == 'jpeg' else 'PNG', **({'quality': 95} if fmt == 'jpeg'
                                                             else {}))
    mask = maskfiles.read(path, 'style')
    got = np.round(maskfiles._array(mask.image) * 255)
    want = np.asarray(half(), float) if mode == '1' else ramp.astype(float)
    if fmt == 'jpeg':
        # JPEG's own loss, the same for the grey and the colour file
        want = np.asarray(Image.open(_saved(grey, 'JPEG', quality=95)).convert('L'), float)
    if mode == 'P':
        want = np.asarray(image.convert('L'), float)
    assert np.abs(got - want).max() <= (1 if mode == 'I;16' else 0), form


def test_a_colour_profile_does_not_move_a_mask_off_white(tmp_path):
    """open_image converts embedded profiles to sRGB; a mask is read as its numbers."""
    from PIL import ImageCms
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile('LAB')).tobytes()
    path = tmp_path / 'm.png'
    half().convert('RGB').save(path, icc_profile=profile)
    mask = maskfiles.read(path, 'style')
    assert np.array_equal(np.asarray(mask.image), np.asarray(half()))


def test_colour_and_black_are_refused_naming_the_file(tmp_path):
    rgb = np.asarray(half().convert('RGB')).copy()
    rgb[0, 0] = (255, 254, 255)                      # one pixel off grey is colour
    Image.fromarray(rgb).save(tmp_path / 'c.png')
    with pytest.raises(MaskError, match=r'style mask .*c\.png is not greyscale'):
        maskfiles.read(tmp_path / 'c.png', 'style')
    Image.new('L', (4, 4), 0).save(tmp_path / 'k.png')
    with pytest.raises(MaskError, match='painting mask .*k.png is black everywhere: there is '
                                        'no painting to read'):
        maskfiles.read(tmp_path / 'k.png', 'painting')
    with pytest.raises(ImageError, match='no such file'):
        maskfiles.read(tmp_path / 'none.png', 'style')


def test_dashes_alone_are_no_masks(tmp_path):
    assert maskfiles.read_all(None, 'style') is None
    assert maskfiles.read_all(['-', '-'], 'style') is None
    half().save(tmp_path / 'm.png')
    masks = maskfiles.read_all(['-', str(tmp_path / 'm.png')], 'painting')
    assert masks[0] is None and masks[1].path == str(tmp_path / 'm.png')
    assert maskfiles.images(masks)[1].size == (W, H)


def test_rest_is_the_second_style_where_the_first_mask_is_not(files, run_cli, one_thread):
    """`--style-masks left.png rest`: the library's picture with [left, 'rest']."""
    common = (files / 'photo.png', files / 'a.png', files / 'b.png', *_args(QUALITY))
    proc = run_cli('stylize', *common, '--style-masks', files / 'left.png', 'rest',
                   '-o', files / 'out.png')
    assert proc.returncode == 0, proc.stderr
    want = stylize(Image.open(files / 'photo.png'), [Image.open(files / 'a.png'),
                                                     Image.open(files / 'b.png')],
                   style_masks=[half(), 'rest'], **QUALITY)
    assert np.array_equal(np.asarray(Image.open(files / 'out.png'), np.int16),
                          np.asarray(want, np.int16))
    proc = run_cli('stylize', *common, '--style-masks', 'rest', '-o', files / 'bad.png')
    assert proc.returncode == 2 and "'rest', but no other style has a mask" in proc.stderr
    assert not (files / 'bad.png').exists()
