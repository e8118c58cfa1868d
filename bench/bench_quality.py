"""Quality (Gatys) benchmark: wall time and peak RSS of each preset, against a plain baseline.

    python bench/bench_quality.py [--size 512] [--baseline-steps 300]

Each configuration runs in its own process (so peak RSS is its own). The baseline is plain
single-scale Gatys: L-BFGS at full size from the content, the same loss function, the same
precision. Every result is scored with that one loss function at full size, and the table
shows how long the baseline needed to reach each preset's final loss.
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


def run_baseline(args):
    from nst_core import imageio
    from nst_core.gatys import optimise
    content, style = _setup(args)
    score, c = _scorer(content, style, args.size)
    curve = []
    t0 = time.perf_counter()
    out = optimise(c, score, args.baseline_steps, 'lbfgs',
                   lambda step, loss: curve.append((time.perf_counter() - t0, loss)))
    imageio.to_pil(out).save(OUT / ('baseline_%d.png' % args.size))
    return dict(name='baseline', seconds=time.perf_counter() - t0, curve=curve,
                loss=score(out)[0].item())


def child(args):
    OUT.mkdir(parents=True, exist_ok=True)
    result = run_baseline(args) if args.one == 'baseline' else run_preset(args)
    result['peak_rss_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def spawn(args, name):
    cmd = [sys.executable, __file__, '--one', name, '--size', str(args.size),
           '--baseline-steps', str(args.baseline_steps), '--content', args.content,
           '--style', args.style]
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
    args = p.parse_args()
    if args.one:
        return child(args)
    import torch
    print('nst_core quality benchmark: %s + %s at %d px, torch %s, %d threads'
          % (args.content, args.style, args.size, torch.__version__, torch.get_num_threads()))
    base = spawn(args, 'baseline')
    print('\n%-9s %9s %9s %10s %10s %14s %8s' % ('config', 'stylize s', 'process s', 'peak MB',
                                               'loss', 'baseline s to', 'speed-up'))
    for name in args.presets:
        r = spawn(args, name)
        reach = time_to_reach(base['curve'], r['loss'])
        print('%-9s %9.1f %9.1f %10.0f %10.4g %14s %8s' % (
            name, r['seconds'], r['process_seconds'], r['peak_rss_mb'], r['loss'],
            'never' if reach is None else '%.1f' % reach,
            '>%.1fx' % (base['seconds'] / r['seconds']) if reach is None
            else '%.1fx' % (reach / r['seconds'])))
    print('%-9s %9.1f %9.1f %10.0f %10.4g   (%d L-BFGS steps at %d px)' % (
        'baseline', base['seconds'], base['process_seconds'], base['peak_rss_mb'],
        base['loss'], args.baseline_steps, args.size))
    print('\noutputs in', OUT)


if __name__ == '__main__':
    main()
