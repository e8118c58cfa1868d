"""Training a network for one style: `python -m nst_core train STYLE... --photos DIR -o M.pth`.

Johnson, Alahi and Fei-Fei (2016): a TransformerNet (models/transformer.py) learns to turn
any photo into the style's painting in one pass. Each step paints a batch of photo crops
(photos.py) and scores the paintings with the product's VGG (vgg16-caffe, the Quality
engine's): content at relu2_2 against the crop's own features, style as the Gram matrices at
relu1_2 .. relu4_3 against the painting's (losses.py: relative errors, so the weights do
not depend on the VGG's units), plus total variation; Adam moves the network.

The keyword defaults of `train` are the single source of truth for its options: the CLI
reads them back as it does stylize()'s.

Files: MODEL.pth is a plain state dict in pytorch/examples' layout (their fast_neural_style
loads it as it is); MODEL.checkpoint.pth adds the step, the optimiser and the loss history,
so `--resume` continues at the exact step (photos.py makes the batches a function of the
step). Both are written every `checkpoint_every` steps, at the end, and when a stop is asked
for (Ctrl+C) after the step in progress, so a stop never leaves half a step or half a file.
"""
import contextlib
import hashlib
import logging
import math
import os
import tempfile
import time
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Literal, Optional, Sequence

import torch
from torch import nn

from . import imageio, losses
from .device import pick
from .progress import Progress, Tracker

_log = logging.getLogger(__name__)
Device = Literal['auto', 'cpu', 'cuda', 'mps']
Precision = Literal['auto', 'fp32', 'bf16', 'fp16']
CHECKPOINT_FORMAT = 'nst_core train checkpoint'
CHECKPOINT_VERSION = 1
# Options whose change makes a resumed run a different training, not its continuation.
SHAPING = ('size', 'batch', 'lr', 'content_weight', 'style_weight', 'tv_weight',
           'content_layers', 'style_layers', 'style_layer_weights', 'style_scale', 'model',
           'seed', 'style_weights')
PREVIEW_SIZE = 512
TIMING_STEPS = 3        # steps timed before saying how long the whole training will take
RECENT = 50             # steps a logged loss is the mean of (one step's loss is noisy)


def train(
    styles: Sequence,
    photos: Sequence[str],
    output: str,
    *,
    style_weights: Optional[Sequence[float]] = None,
    size: int = 256,
    steps: int = 20000,
    batch: int = 4,
    lr: float = 1e-3,
    content_weight: float = 1.0,
    style_weight: float = 5.0,
    tv_weight: float = 10.0,
    content_layers: Sequence[str] = ('relu2_2',),
    style_layers: Sequence[str] = ('relu1_2', 'relu2_2', 'relu3_3', 'relu4_3'),
    style_layer_weights: Optional[Sequence[float]] = None,
    style_scale: float = 1.0,
    model: str = 'auto',
    device: Device = 'auto',
    precision: Precision = 'auto',
    seed: int = 0,
    checkpoint_every: int = 500,
    preview_every: int = 500,
    preview: Optional[str] = None,
    resume: bool = False,
    cache_dir: Optional[str] = None,
    callback: Optional[Callable[[Progress], None]] = None,
    cancel=None,
    log: Optional[Callable[[str], None]] = None,
) -> 'Result':
    """Train a network that paints photos in the blended style of `styles`; returns a Result.

    styles: PIL images of the painting(s); photos: folders (searched with their subfolders)
        or files of training photos; output: the model file to write (.pth).
    style_weights: blend weight per style (default equal).
    size: side of the square photo crops trained on, in pixels (photos are resized to this
        short side first, as Johnson et al. and pytorch/examples do).
    steps: optimiser steps in all (pytorch/examples trains 2 epochs of COCO at batch 4, about
        40000); with resume, the step to train up to.
    batch: photo crops per step.
    lr: Adam's learning rate.
    content_weight, style_weight, tv_weight: loss weights (content and style are relative
        errors per layer, TV the mean squared step between neighbouring pixels, as Quality).
    content_layers, style_layers: VGG layers (Johnson et al.: relu2_2; relu1_2 .. relu4_3).
    style_layer_weights: per style layer weight (default equal, as Johnson et al.).
    style_scale: size of the painting's strokes: the painting is read at 1.5 x size x
        style_scale px on its long side (1.5 x size: the long side of a whole photo).
    model: VGG weights for the losses: 'auto' (vgg16-caffe) or another source or a file.
    device: 'auto' picks CUDA, then MPS, then the CPU.
    precision: 'auto' trains in bfloat16 autocast where the device computes it natively (CUDA
        GPUs from Ampere on, CPUs with AVX-512 BF16), float16 with loss scaling on older
        CUDA GPUs, float32 elsewhere; the losses are always summed in float32.
    seed: random seed for the network's start and the order and crops of the photos.
    checkpoint_every: write the model and a checkpoint every this many steps (0 = only at
        the end and on a stop).
    preview_every: paint the preview photo every this many steps into MODEL.previews/
        (0 = never).
    preview: the photo previews show (default: the first training photo).
    resume: continue from MODEL.checkpoint.pth at the step it was saved at.
    cache_dir: weights cache (default $NST_CORE_CACHE or $XDG_CACHE_HOME/nst_core).
    callback: called with a Progress after every step (its loss is the step's).
    cancel: an object with is_set(); when set, training stops after the step in progress,
        saves, and returns with stopped=True.
    log: called with one-line notes (default: the logging module, logger nst_core.training).
    """
    opts = {k: v for k, v in locals().items()
            if k not in ('styles', 'photos', 'output', 'callback', 'cancel', 'log')}
    log = log or _log.info
    check_options(styles, opts)
    files = Files(Path(output).expanduser())
    files.prepare(resume)
    from .photos import PhotoSet, find_photos
    paths = find_photos(photos)
    dev = pick(device)
    mode = mixed_precision(precision, dev)
    with _cudnn_benchmark(dev):
        session = Session(styles, opts, dev, mode, log)
        start, history = session.restore(files, resume, opts, paths)
        photo_set = PhotoSet(paths, size, seed, warn=log)
        preview_photo = imageio.open_image(preview) if preview else None
        return session.loop(photo_set, start, history, files, preview_photo or paths[0],
                            callback, cancel)


@dataclass
class Result:
    model: Path                   # the model file written
    checkpoint: Path
    step: int                     # steps trained in all
    losses: List[float] = field(default_factory=list)    # every step's total loss
    stopped: bool = False         # stopped early (cancel / Ctrl+C): resume continues
    seconds_per_step: Optional[float] = None


def check_options(styles, o):
    """ValueError for options no training can use."""
    if not styles:
        raise ValueError('at least one style image is needed')
    for name in ('device', 'precision'):
        allowed = typing.get_args(typing.get_type_hints(train)[name])
        if o[name] not in allowed:
            raise ValueError('%s must be one of %s, not %r' % (name, ', '.join(allowed), o[name]))
    for name, low in (('size', 32), ('steps', 1), ('batch', 1)):
        if not o[name] >= low:
            raise ValueError('%s must be at least %d, not %r' % (name, low, o[name]))
    for name in ('lr', 'style_scale'):
        if not o[name] > 0:
            raise ValueError('%s must be positive, not %r' % (name, o[name]))
    for name in ('content_weight', 'style_weight', 'tv_weight', 'checkpoint_every',
                 'preview_every'):
        if not o[name] >= 0:
            raise ValueError('%s must be 0 or more, not %r' % (name, o[name]))
    weights = o['style_weights']
    if weights is not None and (len(weights) != len(styles) or any(w < 0 for w in weights)
                                or sum(weights) <= 0):
        raise ValueError('give one style weight >= 0 per style, not all zero (%d styles, '
                         'weights %s)' % (len(styles), list(weights)))
    layer_weights = o['style_layer_weights']
    if layer_weights is not None and len(layer_weights) != len(o['style_layers']):
        raise ValueError('%d style layer weights given for %d style layers'
                         % (len(layer_weights), len(o['style_layers'])))


def options():
    """Name -> inspect.Parameter for every keyword option of train()."""
    import inspect
    params = inspect.signature(train).parameters
    return {n: p for n, p in params.items() if p.kind is p.KEYWORD_ONLY}


# --- precision ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Mode:
    dtype: Optional[torch.dtype]      # autocast dtype, None for float32
    scaled: bool                      # float16: losses scaled so small gradients survive

    @property
    def layout(self):
        # oneDNN's bf16 and cuDNN's tensor-core convolutions run channels-last natively
        return torch.channels_last if self.dtype is not None else torch.contiguous_format


def mixed_precision(precision: str, dev: torch.device) -> Mode:
    """The autocast mode for `precision` on `dev` (see train()'s docstring)."""
    if precision == 'auto':
        if dev.type == 'cuda':
            precision = 'bf16' if torch.cuda.is_bf16_supported() else 'fp16'
        elif dev.type == 'cpu' and torch.cpu._is_avx512_bf16_supported():
            precision = 'bf16'
        else:
            precision = 'fp32'
    if precision == 'fp16' and dev.type != 'cuda':
        raise ValueError('precision fp16 needs a CUDA GPU (use auto, bf16 or fp32)')
    dtype = {'fp32': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}[precision]
    return Mode(dtype, precision == 'fp16')


def autocast(dev, mode: Mode):
    if mode.dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(dev.type, dtype=mode.dtype)


@contextlib.contextmanager
def _cudnn_benchmark(dev):
    """cuDNN picks its fastest convolutions for the fixed crop size (CUDA only)."""
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = before or dev.type == 'cuda'
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


# --- the loss -------------------------------------------------------------------------------

class PerceptualLoss(nn.Module):
    """Johnson et al.'s loss of a batch of paintings against the photos they were made from."""

    def __init__(self, vgg, grams, o, mode: Mode):
        super().__init__()
        self.vgg, self.grams, self.mode = vgg, grams, mode
        self.content_layers, self.style_layers = list(o['content_layers']), list(o['style_layers'])
        layer_w = o['style_layer_weights'] or [1.0] * len(self.style_layers)
        self.layer_weights = [w / float(sum(layer_w)) for w in layer_w]
        self.weights = (o['content_weight'], o['style_weight'], o['tv_weight'])

    def _gram(self, f):
        # float16 features overflow a Gram sum (values to 1e3, 65 536 pixels): float32 then
        return losses.gram(f.float() if f.dtype == torch.float16 else f)

    def forward(self, painted, photo):
        """(total, {'content', 'style', 'tv'}) for (B, 3, S, S) paintings and photos in 0..1."""
        with torch.no_grad():
            target = self.vgg(photo)
        feats = self.vgg(painted)
        content = sum(losses.content_loss(feats[n], target[n].float())
                      for n in self.content_layers) / len(self.content_layers)
        style = sum(w * losses.relative_mse(self._gram(feats[n]),
                                            self.grams[n].expand(painted.shape[0], -1, -1))
                    for n, w in zip(self.style_layers, self.layer_weights))
        tv = losses.tv_loss(painted.float())
        wc, ws, wt = self.weights
        total = wc * content + ws * style + wt * tv
        return total, {'content': content.detach(), 'style': style.detach(), 'tv': tv.detach()}


def style_targets(vgg, styles, o, dev, mode):
    """{layer: (1, C, C)} blended Gram matrices of the paintings at their training size."""
    from .features import repeat_min
    long_side = max(16, round(1.5 * o['size'] * o['style_scale']))
    blend = o['style_weights'] or [1.0] * len(styles)
    grams = {}
    with torch.no_grad(), autocast(dev, mode):
        for style, w in zip(styles, blend):
            img = imageio.rgb(style)
            t = imageio.to_tensor(imageio.resize(img, imageio.working_size(img.size, long_side)),
                                  dev)
            feats = vgg(repeat_min(t).contiguous(memory_format=mode.layout))
            for n in o['style_layers']:
                g = losses.gram(feats[n].float()) * (w / float(sum(blend)))
                grams[n] = grams.get(n, 0) + g
    return grams


# --- files ----------------------------------------------------------------------------------

class OutputError(ValueError):
    """The model cannot be written where asked, or writing it would destroy a checkpoint."""


class Files:
    """MODEL.pth, MODEL.checkpoint.pth and MODEL.previews/ next to each other."""

    def __init__(self, model: Path):
        self.model = model
        self.checkpoint = model.with_name(model.stem + '.checkpoint' + (model.suffix or '.pth'))
        self.previews = model.with_name(model.stem + '.previews')

    def prepare(self, resume):
        """Refuse up front what would fail or destroy work later."""
        folder = self.model.parent
        if not folder.is_dir():
            raise OutputError('%s: folder %s does not exist' % (self.model, folder))
        if self.model.is_dir():
            raise OutputError('%s is a folder; give a file name such as style.pth' % self.model)
        if resume and not self.checkpoint.is_file():
            raise OutputError('nothing to resume: %s does not exist (train without --resume '
                             'first)' % self.checkpoint)
        if not resume and self.checkpoint.exists():
            raise OutputError('%s exists: --resume continues that training; to start afresh, '
                             'remove it or choose another output' % self.checkpoint)
        try:
            with tempfile.NamedTemporaryFile(dir=str(folder), prefix='.nst_core-probe-'):
                pass
        except OSError as e:
            raise OutputError('%s: cannot write to folder %s (%s)'
                             % (self.model, folder, e.strerror or e)) from None

    @staticmethod
    def _save(obj, path: Path):
        fd, tmp = tempfile.mkstemp(dir=str(path.parent), prefix=path.name + '.', suffix='.part')
        os.close(fd)
        try:
            torch.save(obj, tmp)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)         # readers never see half a file
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def save(self, net, optimizer, scaler, step, history, meta):
        state = {k: v.detach().float().cpu().contiguous() for k, v in net.state_dict().items()}
        self._save(state, self.model)
        self._save({'format': CHECKPOINT_FORMAT, 'version': CHECKPOINT_VERSION, 'step': step,
                    'model': state, 'optimizer': optimizer.state_dict(),
                    'scaler': scaler.state_dict() if scaler.is_enabled() else {},
                    'losses': list(history), **meta}, self.checkpoint)

    def load_checkpoint(self):
        from .weights.base import WeightsError
        from .weights.cache import torch_load_plain
        hint = 'it is not a checkpoint of `python -m nst_core train`; remove it to start afresh'
        data = torch_load_plain(self.checkpoint, hint=hint)
        if data.get('format') != CHECKPOINT_FORMAT or data.get('version') != CHECKPOINT_VERSION:
            raise WeightsError('%s: %s' % (self.checkpoint, hint))
        return data


def digest(styles, weights) -> str:
    """Identifies the paintings (their pixels) and blend a checkpoint was trained on."""
    h = hashlib.blake2b(digest_size=12)
    for s, w in zip(styles, weights or [1.0] * len(styles)):
        img = imageio.rgb(s)
        h.update(repr((img.size, float(w))).encode())
        h.update(img.tobytes())
    return h.hexdigest()


def _plain(value):
    """An option as the checkpoint stores it (lists, not tuples: comparable after loading)."""
    return list(value) if isinstance(value, (list, tuple)) else value


# --- the run --------------------------------------------------------------------------------

class Session:
    """One training run: network, optimiser, loss, on one device."""

    def __init__(self, styles, o, dev, mode, log):
        from .features import load_features
        self.o, self.dev, self.mode, self.log = o, dev, mode, log
        self.meta = {'options': {k: _plain(o[k]) for k in SHAPING},
                     'styles': digest(styles, o['style_weights'])}
        layers = [*o['content_layers'], *o['style_layers']]
        vgg = load_features(o['model'], layers, cache_dir=o['cache_dir'], log=log)
        self.vgg = vgg.to(dev).to(memory_format=mode.layout)
        grams = style_targets(self.vgg, styles, o, dev, mode)
        self.loss = PerceptualLoss(self.vgg, grams, o, mode)
        from .models.transformer import TransformerNet
        with torch.random.fork_rng(devices=[]):     # the seed starts the network, and only it
            torch.manual_seed(o['seed'])
            net = TransformerNet()
        self.net = net.to(dev).to(memory_format=mode.layout).train()
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=o['lr'])
        self.scaler = torch.amp.GradScaler(dev.type, enabled=mode.scaled)

    def restore(self, files, resume, o, paths):
        """(first step, loss history): 0 and [] unless resuming."""
        self.meta['photos'] = len(paths)
        if not resume:
            return 0, []
        data = files.load_checkpoint()
        _check_same_run(data, self.meta, files.checkpoint, self.log)
        self.net.load_state_dict(data['model'])
        self.optimizer.load_state_dict(data['optimizer'])
        if data.get('scaler') and self.scaler.is_enabled():
            self.scaler.load_state_dict(data['scaler'])
        self.log('resuming at step %d of %d (%s)' % (data['step'], o['steps'], files.checkpoint))
        return int(data['step']), list(data.get('losses', []))

    def step(self, photo):
        """One optimiser step on a batch of crops; returns the total loss (a float)."""
        x = photo.to(self.dev, non_blocking=True).contiguous(memory_format=self.mode.layout)
        with autocast(self.dev, self.mode):
            painted = self.net(x * 255.0) / 255.0
            total, parts = self.loss(painted, x)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        value = total.item()
        if not math.isfinite(value) and not self.mode.scaled:
            raise FloatingPointError('the loss became %s at this learning rate; lower --lr '
                                     '(now %g) or use --precision fp32' % (value, self.o['lr']))
        return value

    def loop(self, photo_set, start, history, files, preview, callback, cancel):
        from .photos import prefetching
        o, log = self.o, self.log
        steps = o['steps']
        result = Result(files.model, files.checkpoint, start, history)
        if start >= steps:
            log('the checkpoint is at step %d already: raise --steps to train on' % start)
            return result
        stage = 'Training' if not start else 'Training from step %d' % start
        tracker = Tracker([(stage, steps - start, 1.0)], callback)
        tracker.report(0, 0)
        times, step = [], start
        batches = prefetching(photo_set, start, o['batch'])
        try:
            while step < steps:
                if cancel is not None and cancel.is_set():
                    result.stopped = True
                    break
                t0 = time.monotonic()
                history.append(self.step(next(batches)))
                step += 1
                times.append(time.monotonic() - t0)
                tracker.report(0, step - start, history[-1])
                if len(times) == TIMING_STEPS:
                    self._say_duration(times, steps - step)
                self._periodic(files, step, history, preview)
        finally:
            batches.close()
        self.save(files, step, history)
        result.step = step
        result.seconds_per_step = _pace(times)
        if result.stopped:
            log('stopped at step %d of %d; saved %s (the same command with --resume '
                'continues)' % (step, steps, files.model))
        return result

    def _periodic(self, files, step, history, preview):
        """Checkpoint and preview when their step comes; one log line for what was done."""
        o, done = self.o, []
        if o['checkpoint_every'] and step % o['checkpoint_every'] == 0 and step < o['steps']:
            self.save(files, step, history)
            done.append('saved %s' % files.checkpoint.name)
        if o['preview_every'] and step % o['preview_every'] == 0:
            done.append('preview %s' % self.preview(files, step, preview))
        if done:
            recent = history[-RECENT:]
            self.log('step %d/%d: loss %.4g (mean of the last %d steps); %s'
                     % (step, o['steps'], sum(recent) / len(recent), len(recent),
                        ', '.join(done)))

    def save(self, files, step, history):
        files.save(self.net, self.optimizer, self.scaler, step, history, self.meta)

    def preview(self, files, step, photo):
        """The preview photo painted as stylize(method='trained') would, into previews/."""
        from PIL import Image

        from .photos import decode
        from .trained import paint_photo
        if not isinstance(photo, Image.Image):
            photo = Image.fromarray(decode(photo, PREVIEW_SIZE))
        files.previews.mkdir(exist_ok=True)
        out = paint_photo(self.net, photo, size=PREVIEW_SIZE, device=self.dev)
        path = files.previews / ('step-%06d.jpg' % step)
        imageio.to_pil(out).save(path, quality=90)
        return path

    def _say_duration(self, times, left):
        pace = _pace(times)
        where = {'cpu': 'the CPU', 'cuda': 'the GPU', 'mps': 'the GPU'}[self.dev.type]
        hint = ' (a CUDA GPU is many times faster: --device cuda where there is one)' \
            if self.dev.type == 'cpu' else ''
        self.log('%.2f s a step on %s: the %d steps left take about %s%s; Ctrl+C stops and '
                 'saves, --resume continues' % (pace, where, left, _duration(pace * left), hint))


def _pace(times):
    """Seconds a step, leaving out the first (it also warms up the allocator and kernels)."""
    if not times:
        return None
    rest = times[1:] or times
    return sum(rest) / len(rest)


def _duration(seconds):
    if seconds < 90:
        return '%d s' % round(seconds)
    if seconds < 5400:
        return '%d min' % round(seconds / 60)
    return '%.1f h' % (seconds / 3600)


def _check_same_run(data, meta, path, log):
    """A resumed run must be the same training; say which options differ if not."""
    old = data.get('options', {})
    diff = ['%s %r, not %r' % (k, old.get(k), v) for k, v in meta['options'].items()
            if old.get(k) != v]
    if data.get('styles') != meta['styles']:
        diff.insert(0, 'other style images')
    if diff:
        raise ValueError('%s was trained with %s: give the same options to resume (or remove '
                         'it to start afresh)' % (path, '; '.join(diff[:3])))
    if data.get('photos') not in (None, meta['photos']):
        log('the photos changed since the checkpoint (%s then, %d now): the batches from here '
            'on are not those of an unbroken run' % (data.get('photos'), meta['photos']))
