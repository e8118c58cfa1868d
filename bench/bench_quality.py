"""Quality (Gatys) benchmark: wall time and peak RSS of each preset, against a plain baseline.

    python bench/bench_quality.py [--size 512] [--baseline-steps 300]

Each configuration runs in its own process (so peak RSS is its own). The baselines are plain
single-scale Gatys: L-BFGS at full size with the same loss function and the same precision,
one from the content (the presets' own start), one from noise (Gatys et al.'s start, and
neural-style's default). Every result is scored with that one loss function at full size, and
the table shows how long each baseline needed to reach each preset's final loss. A baseline
stops early once it is below every preset's loss (later steps cannot change the table).
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT.parent / 'shared' / 'data' / 'images' / 'inputs'
OUT = ROOT / 'out' / 'bench_quality'


def _setup(args):
    from nst_core import imageio
    content = imageio.open_image(IMAGES / args.content)
    style = imageio.open_image(IMAGES / args.style)
    return content, style


def _scorer(content, style, size):
    """The full-size loss every result is judged by (stylize()'s default weights)."""
    from nst_core import imageio
    from nst_core.gatys import GatysLoss, load_features, use_bf16
    from nst_core.stylize import options
    import torch
    o = {k: p.default for k, p in options().items()}
    vgg = load_features(o['model'], [*o['content_layers'], *o['style_layers']], log=lambda m: None)
    wh = imageio.working_size(content.size, size)
    c = imageio.to_tensor(imageio.resize(content, wh))
    s = imageio.to_tensor(imageio.resize(style, imageio.working_size(style.size, size)))
    return GatysLoss(vgg, c, [s], [1.0], content_layers=o['content_layers'],
                     style_layers=o['style_layers'], style_layer_weights=None,
                     content_weight=o['content_weight'], style_weight=o['style_weight'],
                     tv_weight=o['tv_weight'], bf16=use_bf16('auto', torch.device('cpu'))), c


def run_preset(args):
    from nst_core import imageio
    from nst_core.stylize import stylize
    content, style = _setup(args)
    stylize(content.resize((32, 24)), [style], size=32, iterations=1, log=lambda m: None)  # warm
    t0 = time.perf_counter()
    out = stylize(content, [style], size=args.size, preset=args.one, log=lambda m: None)
    elapsed = time.perf_counter() - t0
    out.save(OUT / ('%s_%d.png' % (args.one, args.size)))
    score, _ = _scorer(content, style, args.size)
    loss, parts = score(imageio.to_tensor(out))
    return dict(name=args.one, seconds=elapsed, loss=loss.item(),
                parts={k: v.item() for k, v in parts.items()})


class _Reached(Exception):
    pass


def run_baseline(args):
    import torch
    from nst_core import imageio
    from nst_core.gatys import optimise
    content, style = _setup(args)
    score, c = _scorer(content, style, args.size)
    start = torch.rand(c.shape, generator=torch.Generator().manual_seed(0)) \
        if args.one == 'baseline-noise' else c
    curve = []
    t0 = time.perf_counter()

    def report(step, loss):
        curve.append((time.perf_counter() - t0, loss))
        if loss <= args.stop_below:
            raise _Reached
    try:
        optimise(start, score, args.baseline_steps, 'lbfgs', report)
    except _Reached:
        pass
    return dict(name=args.one, seconds=time.perf_counter() - t0, curve=curve,
                loss=curve[-1][1], steps=len(curve))


def child(args):
    OUT.mkdir(parents=True, exist_ok=True)
    result = run_baseline(args) if args.one.startswith('baseline') else run_preset(args)
    result['peak_rss_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def spawn(args, name, stop_below=0.0):
    cmd = [sys.executable, __file__, '--one', name, '--size', str(args.size),
           '--baseline-steps', str(args.baseline_steps), '--content', args.content,
           '--style', args.style, '--stop-below', str(stop_below)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    if proc.returncode:
        sys.exit('%s failed:\n%s' % (name, proc.stderr[-3000:]))
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result['process_seconds'] = time.perf_counter() - t0
    return result


def time_to_reach(curve, loss):
    for t, value in curve:
        if value <= loss:
            return t
    return None


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--size', type=int, default=512)
    p.add_argument('--baseline-steps', type=int, default=300)
    p.add_argument('--presets', nargs='+', default=['draft', 'normal', 'best'])
    p.add_argument('--content', default='tubingen.jpg')
    p.add_argument('--style', default='starry_night.jpg')
    p.add_argument('--one', help=argparse.SUPPRESS)
    p.add_argument('--stop-below', type=float, default=0.0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        return child(args)
    import torch
    print('nst_core quality benchmark: %s + %s at %d px, torch %s, %d threads'
          % (args.content, args.style, args.size, torch.__version__, torch.get_num_threads()))
    presets = [spawn(args, name) for name in args.presets]
    lowest = min(r['loss'] for r in presets)
    bases = [spawn(args, name, lowest) for name in ('baseline', 'baseline-noise')]
    print('\n%-9s %9s %9s %8s %8s %24s %24s' % (
        'config', 'stylize s', 'process s', 'peak MB', 'loss',
        'content-init baseline', 'noise-init baseline'))
    for r in presets:
        cells = []
        for base in bases:
            reach = time_to_reach(base['curve'], r['loss'])
            cells.append('never in %.0f s' % base['seconds'] if reach is None else
                         '%.1f s = %.2fx' % (reach, reach / r['seconds']))
        print('%-9s %9.1f %9.1f %8.0f %8.4g %24s %24s' % (
            r['name'], r['seconds'], r['process_seconds'], r['peak_rss_mb'], r['loss'], *cells))
    for base in bases:
        print('%-15s %5.1f s, %d L-BFGS steps at %d px, loss %.4g, peak %.0f MB' % (
            base['name'], base['seconds'], base['steps'], args.size, base['loss'],
            base['peak_rss_mb']))
    print('\noutputs in', OUT)


if __name__ == '__main__':
    main()
