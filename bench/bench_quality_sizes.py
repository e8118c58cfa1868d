"""Quality at print sizes: time, memory, look and seams at 1024, 2048 and 4096 px.

    python bench/bench_quality_sizes.py [--sizes 1024 2048 4096] [--content two_wings.jpg]

One shared pair (default two_wings.jpg, a 2560x1600 photo, with starry_night.jpg), Normal at
each size, each in a process of its own: wall and CPU seconds, peak RSS, the judge's figures
(it reads every output at 512 px, so the sizes are compared at one scale), and a seam figure.
Sizes above the photo's own are made from the photo enlarged (Lanczos) and say so.

Seam figure: for every tile border of the final scale (each tile's left and top edge inside
the picture, and its right and bottom edge), the mean absolute difference between the two
pixel columns (rows) on either side of it, over the border's length and the RGB channels, in
grey levels; divided by the same mean over every column (row) boundary at least 4 px from a
border, inside tiles. 1.0 means a border is as smooth as the picture anywhere else; the
benchmark prints the largest ratio over all borders. Where the photo's own edges run along
a border both figures rise, so it also prints the same figure at the same lines of the next
smaller result enlarged (its tiles, if any, lie elsewhere): the control. The local figure
compares each border with its own neighbourhood: the step across it over the median step
across the lines 3-16 px either side (1.0: the border is no line at all). Full-size crops of
the borders go to out/bench_quality_sizes/ for looking at.

Targets (issue 13): peak RSS within 6 GB at 4096 px and 4 GB at 2048; 2048 px at most 4.5x
the 1024 px time; judged at 512 px, 2048 as stylised as 1024 (style ratios no higher) with
edge F no more than 0.03 lower; the largest seam ratio not above 1 (or the control's); the
largest local figure near 1.
"""
import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT.parent / 'shared' / 'data' / 'images' / 'inputs'
JUDGE = ROOT.parent / 'shared' / 'tools' / 'judge' / 'judge'
OUT = ROOT / 'out' / 'bench_quality_sizes'
KEYS = ('style_embed_ratio', 'style_embed_ratio_gray', 'edge_f', 'color_swd_ratio')


def content_at(path, side):
    """The photo, enlarged (Lanczos) when `side` is larger than it; and whether it was."""
    from PIL import Image
    from nst_core import imageio
    img = imageio.open_image(path)
    if max(img.size) >= side:
        return img, False
    k = side / max(img.size)
    return img.resize((round(img.size[0] * k), round(img.size[1] * k)), Image.LANCZOS), True


def run_one(args):
    from nst_core import imageio
    from nst_core.api import stylize
    OUT.mkdir(parents=True, exist_ok=True)
    content, enlarged = content_at(IMAGES / args.content, args.one)
    if enlarged:
        content.save(OUT / ('content_%d.png' % args.one))
    style = imageio.open_image(IMAGES / args.style)
    notes = []
    use = resource.getrusage(resource.RUSAGE_SELF)
    c0, t0 = use.ru_utime + use.ru_stime, time.perf_counter()
    out = stylize(content, [style], size=args.one, log=notes.append)
    wall = time.perf_counter() - t0
    use = resource.getrusage(resource.RUSAGE_SELF)
    out.save(OUT / ('normal_%d.png' % args.one))
    tiles = [int(m.group(1)) for n in notes for m in [re.search(r'tile side (\d+)', n)]
             if m and ('%d px in' % max(out.size)) in n]
    print(json.dumps(dict(side=args.one, size=out.size, enlarged=enlarged, seconds=wall,
                          cpu_seconds=use.ru_utime + use.ru_stime - c0,
                          peak_rss_mb=use.ru_maxrss / 1024, tile=tiles[0] if tiles else None,
                          notes=notes)))


def _line_steps(path, tile, like=None):
    """Per axis: (the mean absolute step across every column (row) boundary, the tile
    borders among them, a mask of the boundaries at least 4 px from a border)."""
    from PIL import Image
    from nst_core import tiling
    from nst_core.quality import overlap
    pic = Image.open(path).convert('RGB')
    h, w = pic.height, pic.width
    if like is not None:
        pic = Image.open(like).convert('RGB').resize((w, h), Image.LANCZOS)
    img = np.asarray(pic, dtype=np.float64)
    boxes = tiling.grid(w, h, tile, overlap(tile))
    lines = []
    for axis, length, cuts in ((1, w, {b.x0 for b in boxes} | {b.x1 for b in boxes}),
                               (0, h, {b.y0 for b in boxes} | {b.y1 for b in boxes})):
        steps = np.abs(np.diff(img, axis=axis)).mean(axis=(1 - axis, 2))   # per boundary
        cuts = sorted(c for c in cuts if 0 < c < length)
        far = np.ones(length - 1, bool)
        for c in cuts:
            far[max(0, c - 5):c + 4] = False
        lines.append((steps, cuts, far))
    return lines


def seams(path, tile, like=None):
    """(largest border/inside ratio, per-border ratios) of the final scale's tile borders;
    with `like` (a picture file), the same figure at the same lines of that picture resized
    to this one's size: the control, where the photo's own edges run along a border."""
    ratios = []
    for steps, cuts, far in _line_steps(path, tile, like):
        inside = steps[far].mean()
        ratios += [steps[c - 1] / inside for c in cuts]
    return max(ratios) if ratios else None, ratios


def local_seams(path, tile, like=None):
    """(largest, per-border) step across each tile border over the median step across the
    lines 3-16 px either side of it, in the same picture. A seam is a line that stands out
    from its neighbours; unlike the inside mean, this does not rise where the picture is
    busier near a border than elsewhere. `like`: the same figure at the same lines of that
    picture, as in seams()."""
    ratios = []
    for steps, cuts, _ in _line_steps(path, tile, like):
        for c in cuts:
            near = np.r_[steps[max(0, c - 17):max(0, c - 3)], steps[c + 2:c + 16]]
            ratios.append(steps[c - 1] / max(np.median(near), 1e-6))
    return max(ratios) if ratios else None, ratios


def crops(path, tile, side, out=OUT):
    """Full-size crops around the first vertical and horizontal tile borders."""
    from PIL import Image
    from nst_core import tiling
    from nst_core.quality import overlap
    img = Image.open(path)
    boxes = tiling.grid(*img.size, tile, overlap(tile))
    xs = sorted({b.x0 for b in boxes if b.x0 > 0})
    ys = sorted({b.y0 for b in boxes if b.y0 > 0})
    if xs:
        x = xs[0]
        img.crop((x - 192, 0, x + 192, 384)).save(out / ('border_x_%d.png' % side))
    if ys:
        y = ys[0]
        img.crop((0, y - 192, 384, y + 192)).save(out / ('border_y_%d.png' % side))


def judge(rows, out=OUT):
    if not JUDGE.exists():
        return None
    tsv = out / 'judge_rows.tsv'
    tsv.write_text(''.join('\t'.join(map(str, r)) + '\n' for r in rows))
    proc = subprocess.run([str(JUDGE), '--batch', str(tsv), '--json'], capture_output=True,
                          text=True)
    if proc.returncode:
        sys.exit('the judge failed:\n' + proc.stderr[-2000:])
    return {r['label']: r for r in map(json.loads, filter(str.strip, proc.stdout.splitlines()))}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--sizes', type=int, nargs='+', default=[1024, 2048, 4096])
    p.add_argument('--content', default='two_wings.jpg')
    p.add_argument('--style', default='starry_night.jpg')
    p.add_argument('--one', type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        return run_one(args)
    runs = {}
    for side in args.sizes:
        cmd = [sys.executable, __file__, '--one', str(side), '--content', args.content,
               '--style', args.style]
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT,
                              env=dict(os.environ, PYTHONPATH=str(ROOT)))
        if proc.returncode:
            sys.exit('%d px failed (exit %d)' % (side, proc.returncode))
        runs[side] = json.loads(proc.stdout.strip().splitlines()[-1])
        print('%d px done in %.0f s' % (side, runs[side]['seconds']), flush=True)
    scores = judge([(IMAGES / args.content, IMAGES / args.style,
                     OUT / ('normal_%d.png' % s), s) for s in args.sizes])
    print('\n%s + %s, Normal' % (args.content, args.style))
    print('%6s %11s %8s %9s %9s %8s %6s %9s %9s %7s %8s %8s' % (
        'side', 'size', 'wall s', 'CPU s', 'peak MB', 'tiles of', 'emb', 'emb gray',
        'edge F', 'SWD', 'seam max', 'enlarged'))
    controls = []
    for side, r in runs.items():
        seam = seams(OUT / ('normal_%d.png' % side), r['tile'])[0] if r['tile'] else None
        smaller = [s for s in runs if s < side]
        if seam and smaller:
            below = OUT / ('normal_%d.png' % max(smaller))
            control = seams(OUT / ('normal_%d.png' % side), r['tile'], like=below)[0]
            local = local_seams(OUT / ('normal_%d.png' % side), r['tile'])[0]
            near = local_seams(OUT / ('normal_%d.png' % side), r['tile'], like=below)[0]
            controls.append((side, max(smaller), seam, control, local, near))
        if r['tile']:
            crops(OUT / ('normal_%d.png' % side), r['tile'], side)
        j = scores.get(str(side)) if scores else None
        cells = ['%.3f' % j[k] for k in KEYS] if j else ['-'] * 4
        print('%6d %11s %8.0f %9.0f %9.0f %8s %6s %9s %9s %7s %8s %8s' % (
            side, '%dx%d' % tuple(r['size']), r['seconds'], r['cpu_seconds'], r['peak_rss_mb'],
            r['tile'] or 'whole', *cells, '%.2f' % seam if seam else '-',
            'yes' if r['enlarged'] else 'no'))
    for side, below, seam, control, local, near in controls:
        print('seams at %d px: largest %.2f; the %d px result enlarged, at the same lines: '
              '%.2f (the photo\'s own edges along a border raise both); against the lines '
              'next to each border: largest %.2f (the control %.2f)'
              % (side, seam, below, control, local, near))
    sides = sorted(runs)
    if len(sides) > 1:
        a, b = sides[0], sides[1]
        print('\n%d px / %d px: %.2fx wall, %.2fx CPU time, %.2fx the pixels' % (
            b, a, runs[b]['seconds'] / runs[a]['seconds'],
            runs[b]['cpu_seconds'] / runs[a]['cpu_seconds'],
            (runs[b]['size'][0] * runs[b]['size'][1]) / (runs[a]['size'][0] * runs[a]['size'][1])))
    (OUT / 'results.json').write_text(json.dumps(dict(runs=runs, scores=scores), indent=1,
                                                 default=str))
    print('pictures and border crops in', OUT)


if __name__ == '__main__':
    main()
