"""The worker as the plug-in runs it: a real subprocess, job files, JSON events on stdout."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, scene, stripes
import nst_protocol as protocol


def write_job(tmp_path, content, styles, weights=None, style_masks=None, painting_masks=None,
              **options):
    """job.json and its buffers in tmp_path; masks: PIL 'L' images (None: none for that
    style), written as the protocol's one byte a pixel."""
    content = content.convert('RGBA')
    (tmp_path / 'content.rgba').write_bytes(content.tobytes())
    buffers = []
    for i, s in enumerate(styles):
        s = s.convert('RGBA')
        (tmp_path / ('style%d.rgba' % i)).write_bytes(s.tobytes())
        buffers.append(protocol.Buffer('style%d.rgba' % i, s.width, s.height,
                                       weights[i] if weights else 1.0))
    for i, m in enumerate(painting_masks or ()):
        buffers[i].painting_mask = _mask_buffer(tmp_path, 'painting_mask%d.grey' % i, m)
    masks = [_mask_buffer(tmp_path, 'style_mask%d.grey' % i, m)
             for i, m in enumerate(style_masks or ())]
    options.setdefault('model', 'tiny')
    job = protocol.Job(protocol.Buffer('content.rgba', content.width, content.height),
                       buffers, 'result.rgba', options, masks or None)
    return protocol.write_job(job, str(tmp_path))


def _mask_buffer(folder, name, mask):
    if mask is None or mask == protocol.REST:
        return mask
    (folder / name).write_bytes(mask.tobytes())
    return protocol.mask_buffer(name, *mask.size)


def start(job_path, stdin=subprocess.DEVNULL):
    return subprocess.Popen([sys.executable, '-m', 'nst_core', 'worker', job_path],
                            cwd=ROOT, stdin=stdin, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))


def events_of(stdout):
    return [protocol.parse_event(line) for line in stdout.splitlines() if line.strip()]


def run_job(job_path, timeout=240):
    proc = start(job_path)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, events_of(out), err


def with_alpha_pattern(img):
    """RGBA copy whose alpha has a transparent hole and a soft ramp."""
    rgba = img.convert('RGBA')
    a = np.full((img.height, img.width), 255, np.uint8)
    a[:, : img.width // 4] = np.linspace(0, 255, img.width // 4, dtype=np.uint8)
    a[img.height // 3: img.height // 2, img.width // 2: img.width // 2 + 10] = 0
    rgba.putalpha(Image.fromarray(a))
    return rgba


def test_job_runs_to_done_with_monotone_progress(tmp_path):
    content = with_alpha_pattern(scene(70, 50))
    job = write_job(tmp_path, content, [stripes()], size=64, preset='draft')
    code, events, err = run_job(job)
    assert code == 0, err
    kinds = [e['event'] for e in events]
    assert kinds[0] == 'start' and kinds[-1] == 'done', kinds
    fractions = [e['fraction'] for e in events if e['event'] == 'progress']
    assert len(fractions) > 10
    assert fractions == sorted(fractions) and 0 <= fractions[0] and fractions[-1] == 1.0
    assert all(e['stage'].startswith('Scale') for e in events if e['event'] == 'progress')
    out = Image.frombytes('RGBA', content.size, (tmp_path / 'result.rgba').read_bytes())
    # the result has the layer's full size (upscaled from 64 px) and its alpha, unchanged
    assert np.array_equal(np.asarray(out)[..., 3], np.asarray(content)[..., 3])
    diff = np.abs(np.asarray(out, float)[..., :3] - np.asarray(content, float)[..., :3])
    assert diff.mean() > 2, 'the result should not be a copy of the content'
    assert not list(tmp_path.glob('*.part'))


def test_two_weighted_styles_are_accepted(tmp_path):
    job = write_job(tmp_path, scene(40, 40), [stripes(), scene(30, 30, seed=5)],
                    weights=[0.7, 0.3], size=40, preset='draft', iterations=2)
    code, events, err = run_job(job)
    assert code == 0, err
    assert (tmp_path / 'result.rgba').stat().st_size == 40 * 40 * 4


def test_strength_above_1_runs_bolder(tmp_path):
    content = scene(40, 40)
    away = []
    for strength in (1.0, 1.8):
        folder = tmp_path / str(strength)
        folder.mkdir()
        job = write_job(folder, content, [stripes()], size=40, preset='draft',
                        init='content', strength=strength)
        code, events, err = run_job(job)
        assert code == 0, err
        out = np.frombuffer((folder / 'result.rgba').read_bytes(), np.uint8).reshape(40, 40, 4)
        away.append(np.abs(out[..., :3].astype(float)
                           - np.asarray(content.convert('RGB'), float)).mean())
    assert away[1] > away[0] * 1.2


def test_invalid_job_file_exits_2_with_bad_job(tmp_path):
    (tmp_path / 'job.json').write_text('{"protocol": 7}')
    code, events, _ = run_job(str(tmp_path / 'job.json'))
    assert code == protocol.EXIT_BAD_JOB
    assert events[-1]['event'] == 'error' and events[-1]['kind'] == 'bad_job'
    assert 'protocol version' in events[-1]['message']


@pytest.mark.parametrize('options, words', [
    ({'strength': -1}, 'strength must be between 0 and 2'),
    ({'method': 'magic'}, 'method must be one of'),
    ({'colour': 1}, 'unknown option'),
    ({'device': 'quantum'}, 'device must be one of'),
])
def test_bad_options_give_bad_input_and_no_output(tmp_path, options, words):
    job = write_job(tmp_path, scene(32, 32), [stripes()], **options)
    code, events, _ = run_job(job)
    assert code == protocol.EXIT_FAILED
    assert events[-1]['kind'] == 'bad_input' and words in events[-1]['message']
    assert not (tmp_path / 'result.rgba').exists()


def test_truncated_buffer_is_bad_input(tmp_path):
    job = write_job(tmp_path, scene(32, 32), [stripes()])
    with open(tmp_path / 'content.rgba', 'r+b') as f:
        f.truncate(100)
    code, events, _ = run_job(job)
    assert code == protocol.EXIT_FAILED
    assert events[-1]['kind'] == 'bad_input' and 'expected 4096' in events[-1]['message']


def _wait_for_progress(proc):
    for line in proc.stdout:
        if protocol.parse_event(line)['event'] == 'progress':
            return
    pytest.fail('worker ended before any progress: ' + proc.stderr.read())


@pytest.mark.parametrize('how', ['sigterm', 'stdin'])
def test_cancel_stops_within_a_second_and_writes_nothing(tmp_path, how):
    job = write_job(tmp_path, scene(96, 96), [stripes()], size=96, iterations=100000)
    proc = start(job, stdin=subprocess.PIPE)
    _wait_for_progress(proc)
    time.sleep(0.3)
    t0 = time.monotonic()
    if how == 'sigterm':
        proc.send_signal(signal.SIGTERM)
    else:
        proc.stdin.close()
    rest = proc.stdout.read()            # until the worker exits and closes its stdout
    proc.wait(timeout=10)
    elapsed = time.monotonic() - t0
    proc.stderr.close()
    assert proc.returncode == protocol.EXIT_CANCELLED
    assert elapsed < 1.0, elapsed
    last = events_of(rest)[-1]
    assert last['event'] == 'error' and last['kind'] == 'cancelled'
    assert not (tmp_path / 'result.rgba').exists()
    assert not list(tmp_path.glob('*.part'))


def test_stray_prints_do_not_reach_the_event_stream(tmp_path):
    """Libraries that print to stdout must not corrupt the event stream."""
    job = write_job(tmp_path, scene(32, 32), [stripes()], size=32, iterations=1,
                    preset='draft')
    code = ("import sys; from nst_core import worker; S = sys.modules['nst_core.api']; "
            "orig = S.stylize_with\n"
            "def noisy(*a, **k):\n    print('noise from a library'); return orig(*a, **k)\n"
            "import functools; S.stylize_with = functools.wraps(orig)(noisy); sys.exit(worker.run_job_file(%r))" % job)
    proc = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True,
                          text=True, timeout=240, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == 0, proc.stderr
    events = events_of(proc.stdout)          # every line parses as an event
    assert events[-1]['event'] == 'done'
    assert 'noise from a library' in proc.stderr


def test_cancel_by_a_dead_reader_still_exits_promptly(tmp_path):
    """The plug-in died: stdin reaches EOF and stdout is a broken pipe. The worker must still
    stop within a second, not at the end of its current step."""
    job = write_job(tmp_path, scene(96, 96), [stripes()], size=96, iterations=100000)
    proc = start(job, stdin=subprocess.PIPE)
    _wait_for_progress(proc)
    t0 = time.monotonic()
    proc.stdout.close()                     # the reader is gone ...
    proc.stdin.close()                      # ... and so is its end of our stdin
    proc.wait(timeout=10)
    assert time.monotonic() - t0 < 1.0
    assert proc.returncode == protocol.EXIT_CANCELLED
    assert not (tmp_path / 'result.rgba').exists()
    proc.stderr.close()


def test_a_memory_refusal_sends_its_figures(tmp_path):
    """An out_of_memory error refused up front carries the figures a GUI words its own message
    from (the GIMP plug-in names its "Fit to memory" checkbox, not --fit)."""
    job = write_job(tmp_path, scene(400, 300), [stripes(32, 32)], method='quality',
                    size=60000)
    # Quality at 60000x45000: even in tiles its canvases need about 120 GB
    code, events, err = run_job(job)
    error = [e for e in events if e['event'] == 'error']
    assert code == protocol.EXIT_FAILED and error and error[0]['kind'] == 'out_of_memory', err
    e = error[0]
    assert (e['method'], e['width'], e['height']) == ('quality', 60000, 45000)
    assert e['needed_bytes'] > e['usable_bytes'] and e['free_bytes'] > e['usable_bytes']
    assert e['largest_side'] % 16 == 0 and e['largest_side'] < 60000
    assert 'largest size that fits now is %d px' % e['largest_side'] in e['message']
    assert not (tmp_path / 'result.rgba').exists()


def test_the_time_left_is_estimated_from_the_second_step_at_the_pace_of_the_steps(tmp_path):
    """GIMP's status bar shows the worker's eta: from the second step on (the first also sets
    the scale up, and an estimate from it was several times too long), close to the time the
    job really takes from there."""
    job = write_job(tmp_path, scene(48, 36), [stripes(32, 32)], method='quality',
                    preset='draft', size=48)          # one scale of 60 steps
    code, events, err = run_job(job)
    assert code == 0, err
    steps = [e for e in events if e['event'] == 'progress' and e['step'] >= 1]
    end = steps[-1]['elapsed']                        # the tracker's clock: its last step
    assert steps[0]['eta'] is None
    assert steps[1]['fraction'] < 0.05 and steps[1]['eta'] is not None
    for e in steps[1:]:
        left = end - e['elapsed']
        assert left / 2 - 0.5 <= e['eta'] <= 2 * left + 0.5, (e['step'], e['eta'], left)


# --- previews (docs/protocol.md, "Previews") ----------------------------------------------------

def test_quality_previews_arrive_as_asked(tmp_path):
    content = scene(120, 80)
    job = write_job(tmp_path, content, [stripes()], size=120, preset='draft', iterations=4,
                    preview_seconds=0.01, preview_side=50)
    code, events, err = run_job(job)
    assert code == 0, err
    previews = [e for e in events if e['event'] == 'preview']
    assert previews and events[-1]['event'] == 'done'
    first = [e['event'] for e in events].index('preview')
    assert [e['event'] for e in events[:first]].count('progress') >= 2   # after a step
    for e in previews:
        assert e['path'] == 'preview.rgba' and max(e['width'], e['height']) <= 50
        assert e['stage'].startswith('Scale')
    last = previews[-1]
    assert (last['width'], last['height']) == (50, 33)
    data = (tmp_path / 'preview.rgba').read_bytes()
    assert len(data) == last['width'] * last['height'] * 4
    picture = np.frombuffer(data, np.uint8).reshape(last['height'], last['width'], 4)
    assert (picture[..., 3] == 255).all()                       # opaque
    # the picture being painted: near the result, shrunk
    result = Image.frombytes('RGBA', content.size, (tmp_path / 'result.rgba').read_bytes())
    small = np.asarray(result.convert('RGB').resize((50, 33), Image.BILINEAR), float)
    assert np.abs(picture[..., :3] - small).mean() < 20
    assert not list(tmp_path.glob('*.part'))


def test_no_previews_unless_asked(tmp_path):
    job = write_job(tmp_path, scene(48, 36), [stripes()], size=48, preset='draft',
                    iterations=3)
    code, events, err = run_job(job)
    assert code == 0, err
    assert not [e for e in events if e['event'] == 'preview']
    assert not (tmp_path / 'preview.rgba').exists()


def test_fast_sends_no_previews(tmp_path):
    from nst_core.weights import cache
    if not (cache.default_cache_dir() / 'magenta.pth').exists():
        pytest.skip('the Fast weights are not cached')
    job = write_job(tmp_path, scene(48, 36), [stripes()], method='fast', model='auto',
                    size=48, preview_seconds=0.01)
    code, events, err = run_job(job)
    assert code == 0, err
    assert not [e for e in events if e['event'] == 'preview']


@pytest.mark.parametrize('options, words', [
    ({'preview_seconds': -1}, 'preview_seconds must be'),
    ({'preview_seconds': True}, 'preview_seconds must be'),
    ({'preview_side': 0}, 'preview_side must be'),
    ({'preview_side': 2.5}, 'preview_side must be'),
])
def test_bad_preview_options_are_bad_input(tmp_path, options, words):
    code, events, _ = run_job(write_job(tmp_path, scene(32, 32), [stripes()], **options))
    assert code == protocol.EXIT_FAILED
    assert events[-1]['kind'] == 'bad_input' and words in events[-1]['message']


def test_the_picture_is_the_region_without_padding_and_the_canvas_in_tiles(monkeypatch):
    """Quality's Progress.picture: a whole scale shows the image being optimised, pad_min's
    padding cropped; a tiled scale shows the canvas (finished tiles pasted)."""
    from nst_core import memory
    from nst_core.api import stylize
    sizes = []

    def keep(p):
        if p.picture is not None:
            sizes.append((p.stage, p.picture(1000).size, p.picture(20).size))
    stylize(scene(40, 20), [stripes()], model='tiny', size=0, preset='draft', iterations=2,
            callback=keep)                        # 20 px high: padded to 32 while it works
    assert sizes and all(s[1:] == ((40, 20), (20, 10)) for s in sizes), sizes
    sizes.clear()
    monkeypatch.setattr(memory, 'QUALITY_TILE', 96)
    stylize(scene(224, 160), [stripes(160, 160)], model='tiny', size=0, preset='draft',
            iterations=2, callback=keep)
    tiled = [s for s in sizes if 'tile' in s[0]]
    assert tiled and all(s[1] == (224, 160) for s in tiled), sizes


@pytest.mark.parametrize('fields, ok', [
    (dict(path='preview.rgba', width=4, height=3), True),
    (dict(path='sub/preview.rgba', width=4, height=3), True),
    (dict(path='/etc/passwd', width=4, height=3), False),
    (dict(path='../preview.rgba', width=4, height=3), False),
    (dict(path='', width=4, height=3), False),
    (dict(path='preview.rgba', width=0, height=3), False),
    (dict(path='preview.rgba', width=4.0, height=3), False),
    (dict(path='preview.rgba', width=4), False),
])
def test_a_preview_event_must_name_a_picture_in_the_job_folder(fields, ok):
    line = protocol.encode_event('preview', stage='Scale 1/1', **fields)
    if ok:
        assert protocol.parse_event(line)['path'] == fields['path']
    else:
        with pytest.raises(protocol.ProtocolError):
            protocol.parse_event(line)


# ---- styles by region (issue 24): the masks arrive as one byte a pixel ----------------------

def half(w, h, value=255):
    """A hard mask: the left half `value`, the right half black."""
    a = np.zeros((h, w), np.uint8)
    a[:, : w // 2] = value
    return Image.fromarray(a)


def top(w, h):
    a = np.zeros((h, w), np.uint8)
    a[: h // 2] = 255
    return Image.fromarray(a)


@pytest.mark.parametrize('second', [None, protocol.REST])
def test_a_job_with_masks_paints_the_librarys_picture(tmp_path, monkeypatch, second):
    """Quality on the tiny VGG, one thread here and there (the same sums): the worker's
    result is stylize() with the same masks (the second style everywhere, or "rest", which
    travels as a word), and without them it would be another."""
    from nst_core import stylize
    import torch
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    content, styles = scene(48, 32), [stripes(40, 40), scene(30, 30, seed=5)]
    options = dict(method='quality', model='tiny', preset='draft', iterations=2, seed=3,
                   device='cpu', size=0)
    job = write_job(tmp_path, content, styles, style_masks=[half(48, 32), second],
                    painting_masks=[top(40, 40)], **options)
    assert json.loads(open(job).read())['style_masks'][1] == second
    code, events, err = run_job(job)
    assert code == 0, err
    got = np.asarray(Image.frombytes('RGBA', (48, 32), (tmp_path / 'result.rgba')
                                     .read_bytes()).convert('RGB'), np.int16)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        want = stylize(content, styles, style_masks=[half(48, 32), second],
                       painting_masks=[top(40, 40)], **options)
        plain = stylize(content, styles, **options)
    finally:
        torch.set_num_threads(threads)
    assert np.array_equal(got, np.asarray(want, np.int16))
    assert not np.array_equal(got, np.asarray(plain, np.int16))


def test_a_trained_job_takes_its_one_mask_without_style_buffers(tmp_path):
    """Where no mask reaches, the layer stays itself, its alpha too (a random trained
    network: plumbing)."""
    import torch
    from nst_core.models.transformer import TransformerNet
    torch.manual_seed(0)
    model = tmp_path / 'net.pth'
    torch.save(TransformerNet().state_dict(), model)
    content = with_alpha_pattern(scene(40, 24))
    job = write_job(tmp_path, content, [], style_masks=[half(40, 24)], method='trained',
                    trained_model=str(model), size=0, device='cpu')
    code, events, err = run_job(job)
    assert code == 0, err
    got = np.asarray(Image.frombytes('RGBA', (40, 24), (tmp_path / 'result.rgba').read_bytes()))
    src = np.asarray(content)
    assert np.array_equal(got[:, 20:], src[:, 20:])
    assert np.abs(got[:, :20, :3].astype(int) - src[:, :20, :3]).mean() > 2


def _bad_mask_job(tmp_path, case):
    content, styles = scene(32, 32), [stripes(40, 40)]
    if case == 'black style mask':
        return write_job(tmp_path, content, styles, style_masks=[half(32, 32, 0)])
    if case == 'black painting mask':
        return write_job(tmp_path, content, styles, painting_masks=[half(40, 40, 0)])
    if case == 'truncated mask buffer':
        job = write_job(tmp_path, content, styles, style_masks=[half(32, 32)])
        with open(tmp_path / 'style_mask0.grey', 'r+b') as f:
            f.truncate(100)
        return job
    if case == 'an RGBA buffer as a mask':
        job = write_job(tmp_path, content, styles, painting_masks=[top(40, 40)])
        (tmp_path / 'painting_mask0.grey').write_bytes(stripes(40, 40).convert('RGBA')
                                                       .tobytes())
        return job
    if case == 'missing mask buffer':
        job = write_job(tmp_path, content, styles, style_masks=[half(32, 32)])
        (tmp_path / 'style_mask0.grey').unlink()
        return job
    if case == 'masks as an option':
        job = write_job(tmp_path, content, styles)
        data = json.loads(open(job).read())
        data['options']['style_masks'] = ['sky.png']
        open(job, 'w').write(json.dumps(data))
        return job
    if case == 'style mask of another size':
        job = write_job(tmp_path, content, styles, style_masks=[half(32, 32)])
        data = json.loads(open(job).read())
        data['style_masks'][0].update(width=16, height=64)
        open(job, 'w').write(json.dumps(data))
        return job
    if case == 'more masks than styles':
        return write_job(tmp_path, content, styles, style_masks=[half(32, 32), half(32, 32)])
    raise AssertionError(case)


@pytest.mark.parametrize('case, kind, words', [
    ('black style mask', 'bad_input', 'style mask 1 is black everywhere: its style would be '
                                      'painted nowhere'),
    ('black painting mask', 'bad_input', 'painting mask 1 is black everywhere: there is no '
                                         'painting to read'),
    ('truncated mask buffer', 'bad_input', 'holds 100 bytes, expected 1024 (32x32 8-bit grey '
                                           'mask)'),
    ('an RGBA buffer as a mask', 'bad_input', 'holds more than 1600 bytes, expected 1600 '
                                              '(40x40 8-bit grey mask)'),
    ('missing mask buffer', 'bad_input', 'cannot read buffer'),
    ('masks as an option', 'bad_input', 'unknown option(s) in job: style_masks'),
    ('style mask of another size', 'bad_job', 'style_masks[0] is 16x64, not 32x32 as the '
                                              'content'),
    ('more masks than styles', 'bad_job', 'style_masks must be a list of at most 1'),
])
def test_a_bad_mask_is_one_error_event_and_no_result(tmp_path, case, kind, words):
    code, events, _ = run_job(_bad_mask_job(tmp_path, case))
    assert code == (protocol.EXIT_BAD_JOB if kind == 'bad_job' else protocol.EXIT_FAILED)
    assert events[-1]['event'] == 'error' and events[-1]['kind'] == kind, events
    assert words in events[-1]['message'], events[-1]
    assert not (tmp_path / 'result.rgba').exists()
    assert not list(tmp_path.glob('*.part'))

