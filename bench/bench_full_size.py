"""Pictures at 100 %: Quality and Fast at the layer's own size against the 512 px picture.

    python bench/bench_full_size.py [--methods quality fast] [--pairs two_wings+starry_night ...]
                                    [--samples]

For each photo and painting pair, each method runs twice in a process of its own: at 512 px
(what the dialog gave before, then enlarged by GIMP) and at the photo's own size (size 0).
It prints, per run: wall and CPU seconds and their ratio to the 512 px run of the same pair
(same machine, same minute; the CPU time's ratio too, steadier on a shared machine), peak RSS, the judge's figures at 512 px (style emb / grey /
edge F / colour SWD, and the grey ratio over the 512 px picture's), and what the judge
cannot see (bench/full_size.py): the fine detail (luminance energy above 0.2 cycles per
pixel, the output's over the photo's), the lattice (the strongest narrow spectral peak over
its surroundings; the photo's own beside it) and the frame (per edge, the outer 6 px less
the next 24, the output's less the photo's, in grey levels). Frames are also averaged over
the pairs per edge: a frame is what stays when the pictures' own strokes average out.

Full-size crops go to out/bench_full_size/: per pair and method, [photo | the 512 px picture
enlarged to the photo's size | the picture made at that size], 400x300 px each, from the
picture's busiest and its flattest quarter (detail and sky).

Targets (issue 20, on the pairs it was not tuned on too): Quality at 2560x1600 at most 5x
the 512 px picture's wall time, fine detail at least 0.5, grey style ratio at most 1.05x the
512 px picture's and edge F no more than 0.03 lower; Fast and Quality: every edge's frame
(on the mean over pairs) within 4 grey levels; no lattice (figure at the photo's own).
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from full_size import figures, grey  # noqa: E402
from judging import KEYS, judge  # noqa: E402

IMAGES = ROOT.parent / 'shared' / 'data' / 'images' / 'inputs'
SAMPLES = ROOT / 'samples'
OUT = ROOT / 'out' / 'bench_full_size'
TUNED = ['two_wings+starry_night', 'garden+the_scream']
HELD_OUT = ['two_wings+the_scream', 'garden+shipwreck', 'garden+starry_night',
            'two_wings+shipwreck',
            # camera-sized photos of samples/ (3264x2448, 3088x2056), never tuned on
            'picos+starry_night', 'aitzgorri+the_scream']
SAMPLE_PAIRS = ['coffee+the_scream', 'chelsea+starry_night', 'astronaut+shipwreck']


def find(name):
    for folder in (IMAGES, SAMPLES):
        for ext in ('.jpg', '.png'):
            if (folder / (name + ext)).exists():
                return folder / (name + ext)
    raise SystemExit('no picture named %s in %s or %s' % (name, IMAGES, SAMPLES))


def run_one(args):
    """One stylize() call in this process; prints its figures as JSON."""
    from nst_core import imageio
    from nst_core.api import stylize
    content, style = imageio.open_image(args.content), imageio.open_image(args.style)
    use = resource.getrusage(resource.RUSAGE_SELF)
    c0, t0 = use.ru_utime + use.ru_stime, time.perf_counter()
    out = stylize(content, [style], method=args.method, size=args.size)
    wall = time.perf_counter() - t0
    use = resource.getrusage(resource.RUSAGE_SELF)
    out.save(args.output)
    print(json.dumps(dict(seconds=wall, cpu_seconds=use.ru_utime + use.ru_stime - c0,
                          peak_rss_mb=use.ru_maxrss / 1024, size=out.size)))


def run(method, content, style, size, output):
    cmd = [sys.executable, __file__, '--one', '--method', method, '--content', str(content),
           '--style', str(style), '--size', str(size), '--output', str(output)]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    if proc.returncode:
        sys.exit('%s failed (exit %d)' % (' '.join(cmd), proc.returncode))
    return json.loads(proc.stdout.strip().splitlines()[-1])


def crop_boxes(photo, side=(400, 300)):
    """The busiest and the flattest of the photo's four quarters' central crops."""
    y = grey(photo)
    h, w = y.shape
    boxes = []
    for cy in (h // 4, 3 * h // 4):
        for cx in (w // 4, 3 * w // 4):
            x0, y0 = max(0, cx - side[0] // 2), max(0, cy - side[1] // 2)
            boxes.append((x0, y0, min(w, x0 + side[0]), min(h, y0 + side[1])))
    busy = [np.abs(np.diff(y[b[1]:b[3], b[0]:b[2]], axis=1)).mean() for b in boxes]
    return {'detail': boxes[int(np.argmax(busy))], 'flat': boxes[int(np.argmin(busy))]}


def save_crops(name, photo_path, small_path, large_path):
    from PIL import Image
    photo = Image.open(photo_path).convert('RGB')
    small = Image.open(small_path).convert('RGB').resize(photo.size, Image.BICUBIC)
    large = Image.open(large_path).convert('RGB')
    for kind, box in crop_boxes(photo).items():
        w, h = box[2] - box[0], box[3] - box[1]
        sheet = Image.new('RGB', (3 * w + 20, h), 'white')
        for i, img in enumerate((photo, small, large)):
            sheet.paste(img.crop(box), (i * (w + 10), 0))
        sheet.save(OUT / ('crops_%s_%s.png' % (name, kind)))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--methods', nargs='+', default=['quality', 'fast'])
    p.add_argument('--pairs', nargs='+', default=TUNED + HELD_OUT)
    p.add_argument('--samples', action='store_true', help='add the samples/ pairs')
    p.add_argument('--one', action='store_true', help=argparse.SUPPRESS)
    p.add_argument('--method', help=argparse.SUPPRESS)
    p.add_argument('--content', help=argparse.SUPPRESS)
    p.add_argument('--style', help=argparse.SUPPRESS)
    p.add_argument('--size', type=int, help=argparse.SUPPRESS)
    p.add_argument('--output', help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        return run_one(args)
    OUT.mkdir(parents=True, exist_ok=True)
    pairs = args.pairs + (SAMPLE_PAIRS if args.samples else [])
    runs, rows = {}, []
    for pair in pairs:
        photo, painting = (find(n) for n in pair.split('+'))
        for method in args.methods:
            for size in (512, 0):
                key = '%s_%s_%d' % (pair.replace('+', '_'), method, size)
                out = OUT / (key + '.png')
                runs[key] = dict(run(method, photo, painting, size, out), pair=pair,
                                 method=method, side=size, photo=str(photo), output=str(out))
                rows.append(dict(content=photo, style=painting, output=out, key=key))
                print('%s: %.0f s' % (key, runs[key]['seconds']), flush=True)
            small, large = (runs['%s_%s_%d' % (pair.replace('+', '_'), method, s)]
                            for s in (512, 0))
            large.update(figures(large['output'], photo))
            small.update(figures(small['output'], photo))
            save_crops('%s_%s' % (pair.replace('+', '_'), method), photo, small['output'],
                       large['output'])
    if judge(rows, OUT):
        for row in rows:
            runs[row['key']].update({k: row[k] for k in KEYS})
    report(runs, pairs, args.methods)
    (OUT / 'results.json').write_text(json.dumps(runs, indent=1, default=str))
    print('pictures and crops in', OUT)


def report(runs, pairs, methods):
    print('\n%-34s %9s %6s %6s %6s %6s %6s %6s %6s %6s %6s %7s %9s  %s' % (
        'pair, method', 'size', 'wall s', 'x512', 'cpux', 'GB', 'emb', 'grey', 'x512', 'edgeF',
        'd512', 'fine', 'lattice', 'frame t/b/l/r'))
    for method in methods:
        means = []
        for pair in pairs:
            key = '%s_%s_' % (pair.replace('+', '_'), method)
            small, large = runs[key + '512'], runs[key + '0']
            held = '' if pair in TUNED else ' *'
            for r in (small, large):
                big = r is large
                grey_ratio = (large.get('style_embed_ratio_gray', np.nan)
                              / small.get('style_embed_ratio_gray', np.nan)) if big else 1
                edge_diff = (large.get('edge_f', np.nan) - small.get('edge_f', np.nan)) \
                    if big else 0
                print('%-34s %9s %6.0f %6.2f %6.2f %6.2f %6.3f %6.3f %6.2f %6.3f %+6.3f %7s %9s  %s'
                      % ((pair + held + ', ' + method) if not big else '', '%dx%d' % tuple(
                          r['size']), r['seconds'], r['seconds'] / small['seconds'],
                         r['cpu_seconds'] / small['cpu_seconds'], r['peak_rss_mb'] / 1024, r.get('style_embed_ratio', np.nan),
                         r.get('style_embed_ratio_gray', np.nan), grey_ratio,
                         r.get('edge_f', np.nan), edge_diff,
                         '%.2f' % r['fine_detail'] if big else '-',
                         '%.1f/%.1f' % (r['lattice'], r['lattice_photo']),
                         ' '.join('%+.1f' % r['frame_' + e]
                                  for e in ('top', 'bottom', 'left', 'right'))))
            means.append([large['frame_' + e] for e in ('top', 'bottom', 'left', 'right')])
        m = np.mean(means, 0)
        print('%s at the photo\'s size, frame on the mean over pairs: top %+.1f bottom %+.1f '
              'left %+.1f right %+.1f' % (method, *m))
    print('(* a pair the large-picture recipe was not tuned on; x512: over the 512 px run of the same pair)')


if __name__ == '__main__':
    main()
