"""Benchmark `python -m nst_core train`: a style trained on a CPU in about 20 minutes.

    python bench/bench_train.py                       # 20 min of steps at 256 px, Starry Night
    python bench/bench_train.py --minutes 5 --style samples/the_scream.jpg

In one run:
- the training photos: Debian's mate-backgrounds (GPL-2+: its nature photos and Elephants)
  and scikit-image's bundled data photos (its PyPI wheel), fetched once with `apt-get
  download` and `pip download` into the cache; Garden and TwoWings (shared photos) and
  chelsea, coffee, astronaut (samples/) are left out, so the model never sees them;
- training at 256 px (the product's defaults otherwise) for --minutes of wall time, stopped
  through the cancel event as Ctrl+C would: seconds per step, the loss curve (means over
  windows of steps), previews of chelsea every --preview-every steps;
- the trained model and Fast (Magenta, method='fast') on the same held-out photos with the
  same painting at 512 px, judged by ../shared/tools/judge (it measures, it is no loss):
  the three sample photos and the four shared ones.
Pictures go to out/bench_train/, figures to out/bench_train/results.json. The shared photos
are for benchmarks only: their outputs stay in out/, out of the repository.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))
from judging import KEYS, judge  # noqa: E402
SHARED = ROOT.parent / 'shared'
IMAGES = SHARED / 'data' / 'images' / 'inputs'
SAMPLES = ROOT / 'samples'
OUT = ROOT / 'out' / 'bench_train'
HELD_OUT = [SAMPLES / n for n in ('chelsea.jpg', 'coffee.jpg', 'astronaut.jpg')] + \
    [IMAGES / n for n in ('tubingen.jpg', 'golden_gate.jpg', 'garden.jpg', 'two_wings.jpg')]
# scikit-image's bundled photos (colour and grey) other than the samples' chelsea, coffee and
# astronaut; its drawings, text and microscopy are left out
SKIMAGE = ('rocket.jpg', 'motorcycle_left.png', 'hubble_deep_field.jpg', 'camera.png',
           'moon.png', 'coins.png', 'grass.png', 'gravel.png', 'brick.png')
MATE_LEFT_OUT = ('Garden.jpg', 'TwoWings.jpg')      # the shared benchmark photos
HEAD = ('emb gray', 'style emb', 'edge F', 'colour SWD')


def downloads(cache: Path) -> Path:
    """The .deb and the wheel, fetched into cache once."""
    cache.mkdir(parents=True, exist_ok=True)
    if not list(cache.glob('mate-backgrounds_*.deb')):
        subprocess.run(['apt-get', 'download', 'mate-backgrounds'], cwd=cache, check=True)
    if not list(cache.glob('scikit_image-*.whl')):
        subprocess.run([sys.executable, '-m', 'pip', 'download', '-q', '--no-deps',
                        'scikit-image', '-d', str(cache)], check=True)
    return cache


def training_photos(folder: Path, cache: Path) -> Path:
    """folder/ with the training photos at a short side of 512 px (decoded faster)."""
    if folder.is_dir() and any(folder.iterdir()):
        return folder
    import zipfile
    src = downloads(cache)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        deb = next(src.glob('mate-backgrounds_*.deb'))
        subprocess.run(['dpkg-deb', '-x', str(deb), str(tmp / 'deb')], check=True)
        mate = tmp / 'deb' / 'usr' / 'share' / 'backgrounds' / 'mate'
        picked = [p for p in sorted((mate / 'nature').glob('*.jpg')) if p.name not in MATE_LEFT_OUT]
        picked += sorted((mate / 'abstract').glob('Elephants.jpg'))
        with zipfile.ZipFile(next(src.glob('scikit_image-*.whl'))) as wheel:
            for name in SKIMAGE:
                wheel.extract('skimage/data/' + name, tmp / 'sk')
                picked.append(tmp / 'sk' / 'skimage' / 'data' / name)
        folder.mkdir(parents=True, exist_ok=True)
        for p in picked:
            img = Image.open(p).convert('RGB')
            k = 512 / min(img.size)
            if k < 1:
                img = img.resize((round(img.width * k), round(img.height * k)), Image.LANCZOS)
            img.save(folder / (p.stem + '.jpg'), quality=95)
    return folder


class Deadline:
    """A cancel event that sets itself after `seconds`: the training stops as on Ctrl+C."""

    def __init__(self, seconds):
        self.end = time.monotonic() + seconds

    def is_set(self):
        return time.monotonic() >= self.end


def curve(losses, windows=10):
    """(first step, last step, mean loss) over `windows` equal runs of steps."""
    n = len(losses)
    out = []
    for i in range(windows):
        a, b = n * i // windows, n * (i + 1) // windows
        if b > a:
            out.append((a + 1, b, sum(losses[a:b]) / (b - a)))
    return out


def paint(photos, style, model, work, size):
    """Trained and Fast pictures of each held-out photo; rows for the judge."""
    import nst_core
    rows = []
    for photo in photos:
        content = Image.open(photo).convert('RGB')
        for method in ('trained', 'fast'):
            t0 = time.monotonic()
            out = nst_core.stylize(content, [] if method == 'trained' else [Image.open(style)],
                                   method=method, trained_model=str(model), size=size,
                                   log=lambda s: None)
            seconds = time.monotonic() - t0
            path = work / ('%s_%s.png' % (photo.stem, method))
            out.save(path)
            rows.append(dict(photo=photo.stem, method=method, content=str(photo),
                             style=str(style), output=str(path), seconds=seconds))
    return rows


def table(rows):
    print('\n%-12s %-8s %9s %9s %7s %10s %6s' % ('photo', 'method', *HEAD, 's'))
    for r in rows:
        print('%-12s %-8s %9.3f %9.3f %7.3f %10.3f %6.2f'
              % (r['photo'], r['method'], *(r.get(k, float('nan')) for k in KEYS), r['seconds']))
    for method in ('trained', 'fast'):
        mine = [r for r in rows if r['method'] == method and 'edge_f' in r]
        if mine:
            print('%-12s %-8s %9.3f %9.3f %7.3f %10.3f' % (
                'mean', method, *(sum(r[k] for r in mine) / len(mine) for k in KEYS)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--minutes', type=float, default=20.0, help='training time (wall)')
    ap.add_argument('--style', default=str(SAMPLES / 'starry_night.jpg'))
    ap.add_argument('--photos', help='training photo folder (default: fetched, see above)')
    ap.add_argument('--size', type=int, default=256, help='training crop size')
    ap.add_argument('--judge-size', type=int, default=512, help='size of the judged pictures')
    ap.add_argument('--preview-every', type=int, default=100)
    ap.add_argument('--threads', type=int, default=0, help='torch threads (0: all cores)')
    ap.add_argument('--keep', action='store_true', help='resume the model in out/ if there')
    args = ap.parse_args()
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    from nst_core.imageio import open_image
    from nst_core.training import train

    OUT.mkdir(parents=True, exist_ok=True)
    cache = Path(os.environ.get('NST_CORE_CACHE') or
                 Path(os.environ.get('XDG_CACHE_HOME') or Path.home() / '.cache') / 'nst_core')
    photos = Path(args.photos) if args.photos else \
        training_photos(OUT / 'photos', cache / 'bench_train_downloads')
    held_out = [p for p in HELD_OUT if p.exists()]
    model = OUT / ('%s.pth' % Path(args.style).stem)
    resume = args.keep and model.with_name(model.stem + '.checkpoint.pth').exists()
    if not resume:
        for stale in (model, model.with_name(model.stem + '.checkpoint.pth')):
            stale.unlink(missing_ok=True)
        shutil.rmtree(model.with_name(model.stem + '.previews'), ignore_errors=True)
    n_photos = len(list(photos.iterdir()))
    print('training on %d photos in %s for %.0f min at %d px, style %s'
          % (n_photos, photos, args.minutes, args.size, args.style), flush=True)

    t0 = time.monotonic()
    result = train([open_image(args.style)], [str(photos)], str(model), size=args.size,
                   steps=10 ** 6, resume=resume, cancel=Deadline(args.minutes * 60),
                   preview=str(SAMPLES / 'chelsea.jpg'), preview_every=args.preview_every,
                   checkpoint_every=args.preview_every, log=lambda s: print(s, flush=True))
    wall = time.monotonic() - t0
    print('\n%d steps in %.0f s (%.2f s a step after the first; batch 4 of %d px crops)'
          % (result.step, wall, result.seconds_per_step or float('nan'), args.size))
    print('loss curve (mean total loss over runs of steps):')
    points = curve(result.losses)
    for a, b, mean in points:
        print('  steps %5d-%5d: %.4f' % (a, b, mean))

    rows = paint(held_out, Path(args.style), model, OUT, args.judge_size)
    judged = judge(rows, OUT)
    table(rows)
    (OUT / 'results.json').write_text(json.dumps(dict(
        steps=result.step, wall_s=wall, seconds_per_step=result.seconds_per_step,
        photos=n_photos, size=args.size, style=args.style, curve=points, judged=judged,
        rows=rows), indent=1))
    print('\npictures in %s' % OUT)


if __name__ == '__main__':
    main()
