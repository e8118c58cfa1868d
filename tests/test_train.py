"""Training a style (nst_core.training) and the trained method (nst_core.trained).

Plumbing runs on the 'tiny' random VGG and small generated photos in seconds; the test that
judges what training does to pictures uses the real weights and is marked slow.
"""
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from conftest import ROOT, scene, stripes
import nst_protocol as protocol
from nst_core import stylize
from nst_core.models.transformer import TransformerNet
from nst_core.photos import PhotoError, PhotoSet, find_photos
from nst_core.training import train
from nst_core.trained import load_model, paint_tensor
from nst_core.weights.base import WeightsError

TINY = dict(size=64, batch=2, model='tiny', precision='fp32', checkpoint_every=0,
            preview_every=0)


def quiet(_message):
    pass


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / 'photos'
    (folder / 'sub').mkdir(parents=True)
    for i in range(5):
        scene(120, 90, seed=i).save(folder / ('p%d.png' % i))
    scene(90, 120, seed=9).save(folder / 'sub' / 'tall.jpg')      # subfolders count too
    (folder / '.hidden.png').write_bytes(b'not read')               # hidden files do not
    return folder


class AfterSteps:
    """A cancel event that sets itself once the callback has seen `n` training steps."""

    def __init__(self, n):
        self.n, self.event = n, threading.Event()

    def callback(self, p):
        if p.step >= self.n:
            self.event.set()

    def is_set(self):
        return self.event.is_set()


def state_of(path):
    return torch.load(str(path), map_location='cpu', weights_only=True)


# --- training -------------------------------------------------------------------------------

def test_a_tiny_training_lowers_the_loss_and_writes_a_model_that_stylises(photos, tmp_path):
    model = tmp_path / 'style.pth'
    result = train([stripes()], [str(photos)], str(model), steps=12, log=quiet, **TINY)
    assert result.step == 12 and len(result.losses) == 12 and not result.stopped
    first, last = np.mean(result.losses[:3]), np.mean(result.losses[-3:])
    assert last < 0.8 * first, result.losses
    # the model file is a plain state dict in pytorch/examples' layout
    state = state_of(model)
    assert set(state) == set(TransformerNet().state_dict())
    photo = scene(70, 50, seed=3)
    out = stylize(photo, [], method='trained', trained_model=str(model), size=0, log=quiet)
    assert out.size == photo.size
    assert np.abs(np.asarray(out, float) - np.asarray(photo, float)).mean() > 2


def test_resume_continues_at_the_step_it_stopped_as_an_unbroken_run(photos, tmp_path):
    whole = train([stripes()], [str(photos)], str(tmp_path / 'whole.pth'), steps=6,
                  log=quiet, **TINY)
    stop, said = AfterSteps(3), []
    broken = tmp_path / 'broken.pth'
    first = train([stripes()], [str(photos)], str(broken), steps=6, log=said.append,
                  callback=stop.callback, cancel=stop, **TINY)
    assert first.stopped and first.step == 3
    assert state_of(broken.with_name('broken.checkpoint.pth'))['step'] == 3
    assert any('stopped at step 3 of 6' in s for s in said), said
    said.clear()
    second = train([stripes()], [str(photos)], str(broken), steps=6, resume=True,
                   log=said.append, **TINY)
    assert any('resuming at step 3 of 6' in s for s in said), said
    assert second.step == 6 and not second.stopped
    assert second.losses == pytest.approx(whole.losses, rel=1e-4)
    a, b = state_of(tmp_path / 'whole.pth'), state_of(broken)
    assert all(torch.allclose(a[k], b[k], rtol=1e-4, atol=1e-6) for k in a)


def test_resume_with_other_options_or_style_is_refused_in_one_line(photos, tmp_path):
    model = tmp_path / 'm.pth'
    train([stripes()], [str(photos)], str(model), steps=1, log=quiet, **TINY)
    with pytest.raises(ValueError, match=r'trained with lr 0\.001, not 0\.01'):
        train([stripes()], [str(photos)], str(model), steps=2, resume=True, log=quiet,
              **dict(TINY, lr=0.01))
    with pytest.raises(ValueError, match='other style images'):
        train([scene()], [str(photos)], str(model), steps=2, resume=True, log=quiet, **TINY)


def test_a_preview_is_painted_every_n_steps(photos, tmp_path):
    model = tmp_path / 'm.pth'
    train([stripes()], [str(photos)], str(model), steps=4, log=quiet,
          **dict(TINY, preview_every=2, checkpoint_every=2))
    previews = sorted(p.name for p in (tmp_path / 'm.previews').iterdir())
    assert previews == ['step-000002.jpg', 'step-000004.jpg']
    assert max(Image.open(tmp_path / 'm.previews' / previews[0]).size) == 512


def test_the_photo_stream_is_a_function_of_the_step(photos):
    paths = find_photos([str(photos)])
    assert len(paths) == 6 and not any(p.name.startswith('.') for p in paths)
    a, b = PhotoSet(paths, 64, seed=1), PhotoSet(paths, 64, seed=1)
    assert torch.equal(a.batch(7, 3), b.batch(7, 3))       # a resumed run reads the same
    assert not torch.equal(a.batch(7, 3), a.batch(8, 3))
    assert not torch.equal(a.batch(7, 3), PhotoSet(paths, 64, seed=2).batch(7, 3))
    assert a.batch(0, 2).shape == (2, 3, 64, 64)


@pytest.mark.parametrize('make, words', [
    (lambda d: d / 'nowhere', 'photo folder .*nowhere does not exist'),
    (lambda d: d, 'no pictures found in'),
])
def test_missing_or_empty_photo_folders_are_one_line(tmp_path, make, words):
    with pytest.raises(PhotoError, match=words):
        train([stripes()], [str(make(tmp_path))], str(tmp_path / 'm.pth'), steps=1,
              log=quiet, **TINY)


def test_unreadable_photos_are_skipped_and_all_unreadable_is_one_line(tmp_path):
    folder = tmp_path / 'photos'
    folder.mkdir()
    (folder / 'broken.jpg').write_text('not a picture')
    with pytest.raises(PhotoError, match='none of the 1 pictures could be read'):
        train([stripes()], [str(folder)], str(tmp_path / 'm.pth'), steps=1, log=quiet,
              **TINY)
    scene(100, 80).save(folder / 'good.png')
    said = []
    result = train([stripes()], [str(folder)], str(tmp_path / 'n.pth'), steps=2,
                   log=said.append, **TINY)
    assert result.step == 2
    assert sum('skipping' in s and 'broken.jpg' in s for s in said) == 1, said


def test_the_cli_refuses_bad_starts_in_one_line(photos, tmp_path, run_cli):
    stripes().save(tmp_path / 'style.png')
    base = ('train', tmp_path / 'style.png', '--model', 'tiny', '--size', '64', '--steps', '1')
    cases = [
        (('--photos', tmp_path / 'nowhere', '-o', tmp_path / 'm.pth'), 'does not exist'),
        (('--photos', photos, '-o', tmp_path / 'no' / 'm.pth'), 'folder .* does not exist'),
        (('--photos', photos, '-o', tmp_path / 'm.pth', '--resume'), 'nothing to resume'),
        (('--photos', photos, '-o', photos), 'is a folder; give a file name'),
        (('--photos', photos, '-o', tmp_path / 'm.pth', '--batch', '0'), 'batch must be'),
    ]
    for args, words in cases:
        proc = run_cli(*base, *args)
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert proc.returncode == 2, proc.stderr
        assert len(lines) == 1 and lines[0].startswith('nst_core: error:'), proc.stderr
        assert __import__('re').search(words, lines[0]), lines[0]
    (tmp_path / 'm.checkpoint.pth').write_bytes(b'x')
    proc = run_cli(*base, '--photos', photos, '-o', tmp_path / 'm.pth')
    assert proc.returncode == 2 and '--resume continues that training' in proc.stderr
    proc = run_cli(*base, '--photos', photos, '-o', tmp_path / 'm.pth', '--resume')
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert 'not a checkpoint of `python -m nst_core train`' in lines[0], lines[0]


def test_ctrl_c_saves_and_stops_cleanly_and_resume_goes_on(photos, tmp_path):
    stripes().save(tmp_path / 'style.png')
    model = tmp_path / 'm.pth'
    args = [sys.executable, '-m', 'nst_core', 'train', str(tmp_path / 'style.png'),
            '--photos', str(photos), '-o', str(model), '--model', 'tiny', '--size', '64',
            '--batch', '1', '--steps', '100000', '--preview-every', '0']
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    said = []
    try:
        # after 3 steps it says how long it will take: Ctrl+C while it still prints that
        # line (a handler that logged through the Reporter's lock deadlocked here)
        for line in proc.stderr:
            said.append(line)
            if 's a step on the CPU' in line:
                break
        proc.send_signal(signal.SIGINT)
        _, rest = proc.communicate(timeout=120)
    finally:
        proc.kill()
    said.append(rest)
    assert proc.returncode == 3, ''.join(said)
    assert 'stopped at step' in rest and 'Traceback' not in rest, rest
    step = state_of(model.with_name('m.checkpoint.pth'))['step']
    assert 3 <= step < 100000
    assert set(state_of(model)) == set(TransformerNet().state_dict())
    assert not list(tmp_path.glob('*.part'))
    proc = subprocess.run([*args[:-4], '--steps', str(step + 2), '--resume', '--preview-every',
                           '0'], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert 'resuming at step %d of %d' % (step, step + 2) in proc.stderr
    assert state_of(model.with_name('m.checkpoint.pth'))['step'] == step + 2


# --- the classic models ---------------------------------------------------------------------

class ExamplesNet(nn.Module):
    """pytorch/examples' fast_neural_style TransformerNet, written out here from its layout
    (reflection-padded convolutions named convN.conv2d, affine instance norms inN, five
    residual blocks, nearest-upsampling convolutions), independently of models/transformer.py."""

    def __init__(self):
        super().__init__()
        conv = self._conv
        self.conv1, self.in1 = conv(3, 32, 9), nn.InstanceNorm2d(32, affine=True)
        self.conv2, self.in2 = conv(32, 64, 3, 2), nn.InstanceNorm2d(64, affine=True)
        self.conv3, self.in3 = conv(64, 128, 3, 2), nn.InstanceNorm2d(128, affine=True)
        for i in range(1, 6):
            block = nn.Module()
            block.conv1, block.in1 = conv(128, 128, 3), nn.InstanceNorm2d(128, affine=True)
            block.conv2, block.in2 = conv(128, 128, 3), nn.InstanceNorm2d(128, affine=True)
            setattr(self, 'res%d' % i, block)
        self.deconv1, self.in4 = conv(128, 64, 3), nn.InstanceNorm2d(64, affine=True)
        self.deconv2, self.in5 = conv(64, 32, 3), nn.InstanceNorm2d(32, affine=True)
        self.deconv3 = conv(32, 3, 9)

    @staticmethod
    def _conv(cin, cout, k, stride=1):
        layer = nn.Module()
        layer.reflection_pad = nn.ReflectionPad2d(k // 2)
        layer.conv2d = nn.Conv2d(cin, cout, k, stride)
        return layer

    def forward(self, x):
        def c(layer, y, up=False):
            if up:
                y = nn.functional.interpolate(y, scale_factor=2, mode='nearest')
            return layer.conv2d(layer.reflection_pad(y))
        relu = nn.functional.relu
        y = relu(self.in1(c(self.conv1, x)))
        y = relu(self.in2(c(self.conv2, y)))
        y = relu(self.in3(c(self.conv3, y)))
        for i in range(1, 6):
            b = getattr(self, 'res%d' % i)
            y = y + b.in2(c(b.conv2, relu(b.in1(c(b.conv1, y)))))
        y = relu(self.in4(c(self.deconv1, y, up=True)))
        y = relu(self.in5(c(self.deconv2, y, up=True)))
        return c(self.deconv3, y)


def randomised(net, seed=0):
    """Every parameter random (norm scales and shifts too: a fresh net has them at 1 and 0,
    which would hide a norm loaded in the wrong place)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.1 + (1.0 if p.dim() == 1 else 0))
    return net


def old_style(state):
    """The keys torch 0.3 saved for every instance norm, as in the published candy.pth."""
    out = dict(state)
    for k, v in state.items():
        if k.split('.')[-2].startswith('in') and k.endswith('.weight'):
            out[k[:-len('weight')] + 'running_mean'] = torch.zeros_like(v)
            out[k[:-len('weight')] + 'running_var'] = torch.ones_like(v)
    return out


@pytest.mark.parametrize('stale_stats', [False, True])
def test_pytorch_examples_models_load_and_paint_as_their_own_network(tmp_path, stale_stats):
    ref = randomised(ExamplesNet()).eval()
    state = ref.state_dict()
    if stale_stats:
        state = old_style(state)
        assert sum('running_mean' in k for k in state) == 15
    path = tmp_path / 'candy.pth'
    torch.save(state, path)
    net = load_model(path)
    x = torch.rand(1, 3, 52, 68, generator=torch.Generator().manual_seed(1)) * 255
    with torch.no_grad():
        assert torch.allclose(net(x), ref(x), rtol=1e-4, atol=1e-3)
    out = stylize(scene(68, 52), [], method='trained', trained_model=str(path), size=0,
                  log=quiet)
    assert out.size == (68, 52)


def test_a_checkpoint_of_a_training_loads_as_a_model(photos, tmp_path):
    train([stripes()], [str(photos)], str(tmp_path / 'm.pth'), steps=1, log=quiet, **TINY)
    a = load_model(tmp_path / 'm.checkpoint.pth').state_dict()
    b = load_model(tmp_path / 'm.pth').state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


class NotATensor:
    pass


def bad_model_files(tmp_path):
    net = TransformerNet()
    state = net.state_dict()
    files = {
        'missing.pth': None,
        'empty.pth': b'',
        'text.pth': b'not a model at all',
        'truncated.pth': 'truncated',
        'vgg.pth': {'features.0.weight': torch.zeros(64, 3, 3, 3)},
        'shapes.pth': {**state, 'conv1.conv2d.weight': torch.zeros(32, 3, 3, 3)},
        'code.pth': {'model': NotATensor()},
        'whole_module.pth': net,
    }
    for name, obj in files.items():
        path = tmp_path / name
        if isinstance(obj, bytes):
            path.write_bytes(obj)
        elif obj == 'truncated':
            torch.save(state, path)
            data = path.read_bytes()
            path.write_bytes(data[:len(data) // 2])
        elif obj is not None:
            torch.save(obj, path)
    return files


@pytest.mark.parametrize('name, words', [
    ('missing.pth', 'does not exist'),
    ('empty.pth', 'not a torch.save file'),
    ('text.pth', 'not a torch.save file'),
    ('truncated.pth', 'unreadable as a torch file'),
    ('vgg.pth', 'looks like a VGG'),
    ('shapes.pth', r'conv1\.conv2d\.weight has shape \(32, 3, 3, 3\), not \(32, 3, 9, 9\)'),
    ('code.pth', 'never loaded'),
    ('whole_module.pth', 'never loaded'),
])
def test_bad_model_files_are_one_clear_line(tmp_path, run_cli, name, words):
    bad_model_files(tmp_path)
    with pytest.raises(WeightsError, match=words):
        load_model(tmp_path / name)
    scene(40, 30).save(tmp_path / 'photo.png')
    proc = run_cli('stylize', tmp_path / 'photo.png', '--method', 'trained',
                   '--trained-model', tmp_path / name, '-o', tmp_path / 'out.png')
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1, proc.stderr
    assert len(lines) == 1 and lines[0].startswith('nst_core: error:'), proc.stderr
    assert 'pytorch/examples' in lines[0] and not (tmp_path / 'out.png').exists()


def test_trained_without_a_model_is_one_line(tmp_path, run_cli):
    scene(40, 30).save(tmp_path / 'photo.png')
    proc = run_cli('stylize', tmp_path / 'photo.png', '--method', 'trained', '-o',
                   tmp_path / 'out.png')
    assert proc.returncode == 2 and "needs trained_model" in proc.stderr, proc.stderr


# --- the trained method ---------------------------------------------------------------------

def random_model(tmp_path, seed=0):
    path = tmp_path / 'random.pth'
    torch.save(randomised(TransformerNet(), seed).state_dict(), path)
    return path


def test_tiles_give_the_one_pass_result():
    net = randomised(TransformerNet()).eval()
    x = torch.rand(1, 3, 150, 230, generator=torch.Generator().manual_seed(2))
    steps = []
    with torch.no_grad():
        whole = paint_tensor(net, x, tile_size=4096)
        tiled = paint_tensor(net, x, tile_size=96, report=lambda s, t: steps.append((s, t)))
    assert len(steps) > 7 and steps[-1][0] == steps[-1][1]
    assert (whole - tiled).abs().max() < 2e-3


def test_strength_and_colour_options_act_on_the_trained_method(tmp_path):
    path, photo = random_model(tmp_path), scene(96, 72)
    kw = dict(method='trained', trained_model=str(path), size=0, log=quiet)
    same = np.asarray(stylize(photo, [], strength=0.0, **kw), float)
    assert np.abs(same - np.asarray(photo, float)).mean() < 1.5
    plain = np.asarray(stylize(photo, [], **kw), float)
    kept = np.asarray(stylize(photo, [], preserve_colors='luminance', **kw), float)

    def chroma(a):
        return a - a.mean(-1, keepdims=True)
    photo_c = chroma(np.asarray(photo, float))
    # (a random network's painting is clipped in places, where no colour can be kept)
    assert np.abs(chroma(kept) - photo_c).mean() < 0.7 * np.abs(chroma(plain) - photo_c).mean()


def test_the_worker_runs_a_trained_job_without_style_buffers(tmp_path):
    path = random_model(tmp_path)
    content = scene(80, 60).convert('RGBA')
    (tmp_path / 'content.rgba').write_bytes(content.tobytes())
    job = protocol.Job(protocol.Buffer('content.rgba', 80, 60), [], 'result.rgba',
                       {'method': 'trained', 'trained_model': str(path), 'size': 0})
    job_path = protocol.write_job(job, str(tmp_path))
    proc = subprocess.run([sys.executable, '-m', 'nst_core', 'worker', job_path], cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True,
                          text=True, timeout=120)
    events = [protocol.parse_event(line) for line in proc.stdout.splitlines() if line.strip()]
    assert proc.returncode == 0, proc.stderr
    assert events[-1]['event'] == 'done'
    out = Image.frombytes('RGBA', (80, 60), (tmp_path / 'result.rgba').read_bytes())
    assert np.abs(np.asarray(out, float) - np.asarray(content, float))[..., :3].mean() > 2
    # without a model file it is one bad_input line, not a crash
    job.options['trained_model'] = str(tmp_path / 'gone.pth')
    job_path = protocol.write_job(job, str(tmp_path))
    proc = subprocess.run([sys.executable, '-m', 'nst_core', 'worker', job_path], cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True,
                          text=True, timeout=120)
    events = [protocol.parse_event(line) for line in proc.stdout.splitlines() if line.strip()]
    assert proc.returncode == 1 and events[-1]['kind'] == 'weights', proc.stdout
    assert 'gone.pth does not exist' in events[-1]['message']


def test_only_trained_jobs_may_come_without_styles():
    data = protocol.Job(protocol.Buffer('c.rgba', 4, 4), [], 'r.rgba',
                        {'method': 'fast'}).to_json()
    with pytest.raises(protocol.JobError, match='styles must be a non-empty list'):
        protocol.parse_job(data)
    data['options']['method'] = 'trained'
    assert protocol.parse_job(data).styles == []


# --- with the real weights ------------------------------------------------------------------

@pytest.mark.slow
def test_real_training_moves_unseen_photos_towards_the_painting(photos, tmp_path):
    """Trained with the real VGG-16 for 60 steps, the network paints a photo it never saw
    with Gram statistics nearer the painting's than the photo's own. Only a little nearer:
    60 steps at 64 px are a start (0.93 of the photo's distance measured; the 15-minute
    benchmark's 288 steps are still a tinted photo), and Trained paints on its canvas size,
    not the 64 px it trained at."""
    from nst_core import losses
    from nst_core.features import load_features
    style = stripes(128, 128, period=12)
    model = tmp_path / 'm.pth'
    result = train([style], [str(photos)], str(model), steps=60, size=64, batch=2,
                   checkpoint_every=0, preview_every=0, log=quiet)
    assert np.mean(result.losses[-5:]) < 0.7 * np.mean(result.losses[:5])
    unseen = scene(96, 96, seed=42)
    out = stylize(unseen, [], method='trained', trained_model=str(model), size=0, detail=0.0,
                  log=quiet)
    layers = ['relu1_2', 'relu2_2', 'relu3_3']
    vgg = load_features('auto', layers, log=quiet)

    def grams(img):
        from nst_core import imageio
        with torch.no_grad():
            f = vgg(imageio.to_tensor(imageio.rgb(img), torch.device('cpu')))
        return [losses.gram(f[n]) for n in layers]
    target = grams(style.resize((96, 96)))

    def distance(img):
        return sum(float(losses.relative_mse(g, t)) for g, t in zip(grams(img), target))
    assert distance(out) < 0.97 * distance(unseen), (distance(out), distance(unseen))
