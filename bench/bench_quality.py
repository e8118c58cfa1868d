"""Quality benchmark: the presets judged against neural-style's published outputs and recipe.

    python bench/bench_quality.py                      # everything (about 40 min on 2 cores)
    python bench/bench_quality.py --recipe-steps 0     # without neural-style's recipe
    python bench/bench_quality.py --pairs tubingen+starry_night --presets normal
    python bench/bench_quality.py --recipe-pairs tubingen+starry_night golden_gate+the_scream
    python bench/bench_quality.py --nnst-repo PATH    # + Kolkin et al.'s NNST-Opt, side by side

On every shared pair that has a published neural-style output (../shared/data/images), in
one run: Draft, Normal and Best at --size; neural-style's own recipe (one scale, noise init,
1000 L-BFGS steps, its loss normalisation and weights 5 / 100 / 1e-3; neural_style_recipe.py)
on the same engine and weights; the published picture itself. The recipe runs in float32:
its first steps change pixels by less than bfloat16 resolves, and in bf16 its loss hardly
moves (1.2728e8 -> 1.2726e8 in 60 steps at 256 px, against 7.2e5 in float32), so Normal
runs in float32 too ('normal-fp32') for the speed comparison. Each configuration runs in a
process of its own (its peak RSS is its own) and is judged by ../shared/tools/judge, which
measures and is never a loss. With --nnst-repo (a checkout of
nkolkin13/NeuralNeighborStyleTransfer, not part of this repository), NNST-Opt on the recipe
pairs, on our VGG-16 weights (nnst_peer.py). With Normal, its strength curve: Normal at
--strengths on --strength-pairs, judged grey style against strength. Then the cost of one
Quality step against the bare VGG trunk's forward and backward at 256 and 512 px, same
precision and layout. Pictures go to out/bench_quality/<config>/<pair>.png, figures to
out/bench_quality/results.json.
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
SHARED = ROOT.parent / 'shared'
IMAGES = SHARED / 'data' / 'images'
JUDGE = SHARED / 'tools' / 'judge' / 'judge'
OUT = ROOT / 'out' / 'bench_quality'
# content + style -> the published output's file in reference/
PAIRS = {
    'golden_gate+starry_night': 'golden_gate_starry',
    'golden_gate+the_scream': 'golden_gate_scream',
    'tubingen+shipwreck': 'tubingen_shipwreck',
    'tubingen+starry_night': 'tubingen_starry',
    'tubingen+the_scream': 'tubingen_scream',
}
KEYS = ('style_embed_ratio', 'style_embed_ratio_gray', 'edge_f', 'color_swd_ratio')
HEAD = ('style emb', 'emb gray', 'edge F', 'colour SWD')


def inputs(pair):
    content, style = pair.split('+')
    return IMAGES / 'inputs' / (content + '.jpg'), IMAGES / 'inputs' / (style + '.jpg')


# --- children: one configuration, every pair -------------------------------------------------

def run_config(args):
    from nst_core import imageio
    from nst_core.api import stylize
    sys.path.insert(0, str(Path(__file__).parent))
    from neural_style_recipe import stylize_neural_style
    out_dir = OUT / args.one
    out_dir.mkdir(parents=True, exist_ok=True)
    seconds, cpu = {}, {}
    for pair in args.pairs:
        content, style = (imageio.open_image(p) for p in inputs(pair))
        c0, t0 = _cpu_seconds(), time.perf_counter()
        if args.one == 'neural-style':
            out = stylize_neural_style(content, style, size=args.size, steps=args.recipe_steps,
                                       precision='fp32')
        elif args.one == 'nnst':
            from nnst_peer import stylize_nnst
            out = stylize_nnst(args.nnst_repo, content, style, size=args.size)
        elif args.one.startswith('strength-'):
            out = stylize(content, [style], size=args.size,
                          strength=float(args.one.split('-', 1)[1]), log=lambda m: None)
        else:
            preset, _, precision = args.one.partition('-')
            out = stylize(content, [style], size=args.size, preset=preset,
                          precision=precision or 'auto', log=lambda m: None)
        seconds[pair], cpu[pair] = time.perf_counter() - t0, _cpu_seconds() - c0
        out.save(out_dir / (pair + '.png'))
        print('%s %s %.1f s' % (args.one, pair, seconds[pair]), file=sys.stderr, flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(dict(config=args.one, seconds=seconds, cpu_seconds=cpu, peak_rss_mb=peak)))


def _cpu_seconds():
    """This process's CPU time: on a machine shared with other work, wall time stretches
    with the load but CPU time hardly does, so speed ratios use it."""
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


def step_cost(args):
    """min seconds of one forward+backward: Quality's loss, the bare trunk, at each size."""
    import torch
    from nst_core.features import load_features, use_bf16
    from nst_core.quality import GatysLoss
    from nst_core.api import options
    o = {k: p.default for k, p in options().items()}
    layers = [*o['content_layers'], *o['style_layers']]
    bf16 = use_bf16('auto', torch.device('cpu'))
    vgg = load_features(o['model'], layers, log=lambda m: None)
    deepest = max(layers, key=vgg.names.index)
    trunk = load_features(o['model'], [deepest], log=lambda m: None)
    trunk.to(memory_format=torch.channels_last if bf16 else torch.contiguous_format)
    g = torch.Generator().manual_seed(0)
    rows = {}
    for side in (256, 512):
        h, w = side * 3 // 4, side
        content, style = torch.rand(1, 3, h, w, generator=g), torch.rand(1, 3, h, w, generator=g)
        loss = GatysLoss(vgg, content, [style], [1.0], content_layers=o['content_layers'],
                         style_layers=o['style_layers'],
                         style_layer_weights=o['style_layer_weights'],
                         content_weight=o['content_weight'], style_weight=o['style_weight'],
                         tv_weight=o['tv_weight'], bf16=bf16)

        def bare(x):
            with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16):
                y = trunk(x.contiguous(memory_format=loss.layout))[deepest]
            return y.float().sum()
        rows[side] = dict(quality=_min_time(lambda x: loss(x)[0], content),
                          trunk=_min_time(bare, content), layer=deepest)
    print(json.dumps(dict(bf16=bf16, threads=torch.get_num_threads(), sizes=rows)))


def _min_time(fn, like, repeats=7):
    best = float('inf')
    for i in range(repeats):
        x = like.clone().requires_grad_(True)
        t0 = time.perf_counter()
        fn(x).backward()
        if i:                      # the first call pays for allocation and oneDNN's plans
            best = min(best, time.perf_counter() - t0)
    return best


# --- the parent -------------------------------------------------------------------------------

RECIPE_CONFIGS = ('normal-fp32', 'neural-style', 'nnst')


def pairs_of(args, config):
    if config.startswith('strength-'):
        return args.strength_pairs
    return args.recipe_pairs if config in RECIPE_CONFIGS else args.pairs


def spawn(args, one):
    cmd = [sys.executable, __file__, '--one', one, '--size', str(args.size),
           '--recipe-steps', str(args.recipe_steps), '--pairs', *pairs_of(args, one),
           *(['--nnst-repo', args.nnst_repo] if args.nnst_repo else [])]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    if proc.returncode:
        sys.exit('%s failed (exit %d)' % (one, proc.returncode))
    return json.loads(proc.stdout.strip().splitlines()[-1])


def judge(rows):
    """{(config, pair): judge figures}, or None when the judge is not there."""
    if not JUDGE.exists():
        return None
    OUT.mkdir(parents=True, exist_ok=True)
    tsv = OUT / 'judge_rows.tsv'
    tsv.write_text(''.join('%s\t%s\t%s\t%s|%s\n' % (*inputs(pair), path, config, pair)
                           for config, pair, path in rows))
    proc = subprocess.run([str(JUDGE), '--batch', str(tsv), '--json'], capture_output=True,
                          text=True)
    if proc.returncode:
        sys.exit('the judge failed:\n' + proc.stderr[-2000:])
    found = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    return {tuple(r['label'].split('|')): r for r in found}


def mean(values):
    values = list(values)
    return sum(values) / len(values)


def print_tables(configs, runs, scores, pairs, recipe_pairs):
    if scores and set(recipe_pairs) != set(pairs):
        print('\nOn the recipe\'s %d pairs (%s)' % (len(recipe_pairs), ', '.join(recipe_pairs)))
        _means_table(configs, runs, scores, recipe_pairs)
    print('\nMeans over %d pairs (judge: lower is better but edge F)' % len(pairs))
    _means_table([c for c in configs if c not in RECIPE_CONFIGS or set(recipe_pairs) == set(pairs)],
                 runs, scores, pairs)
    if scores:
        _per_pair(configs, scores, pairs)


def _means_table(configs, runs, scores, pairs):
    print('%-13s %9s %9s %9s %10s %10s %10s %9s' % ('config', *HEAD, 's / pair', 'CPU s', 'peak MB'))
    for c in configs:
        run = runs.get(c)
        secs = '%10.1f %10.1f' % (mean(run['seconds'].values()), mean(run['cpu_seconds'].values())) \
            if run else '%10s %10s' % ('-', '-')
        peak = '%9.0f' % run['peak_rss_mb'] if run else '%9s' % '-'
        cells = ['%9.3f' % mean(scores[c, p][k] for p in pairs) for k in KEYS] if scores \
            else ['%9s' % '-'] * len(KEYS)
        print('%-13s %s %s %s %s %s %s' % (c, *cells, secs, peak))


def _per_pair(configs, scores, pairs):
    print('\nPer pair: style emb gray / edge F')
    print('%-26s' % 'pair' + ''.join('%16s' % c for c in configs))
    for p in pairs:
        print('%-26s' % p + ''.join('%16s' % ('%.3f / %.3f' % (scores[c, p][KEYS[1]],
                                                                scores[c, p][KEYS[2]])
                                              if (c, p) in scores else '-')
                                    for c in configs))


def print_targets(runs, scores, pairs, recipe_pairs):
    if not scores or 'normal' not in runs:
        return
    means = {c: {k: mean(scores[c, p][k] for p in pairs) for k in KEYS}
             for c in {c for c, _ in scores}
             if c not in RECIPE_CONFIGS and not c.startswith('strength-')}
    normal, pub = means['normal'], means['published']
    checks = [('Normal style emb <= published', normal[KEYS[0]] <= pub[KEYS[0]]),
              ('Normal style emb gray <= published', normal[KEYS[1]] <= pub[KEYS[1]]),
              ('Normal edge F >= published', normal[KEYS[2]] >= pub[KEYS[2]]),
              ('Normal colour SWD <= published', normal[KEYS[3]] <= pub[KEYS[3]]),
              ('no pair edge F > 0.05 below its published',
               all(scores['normal', p][KEYS[2]] >= scores['published', p][KEYS[2]] - 0.05
                   for p in pairs))]
    if 'best' in means:
        best, ratio = means['best'], mean(runs['best']['cpu_seconds'].values()) / \
            mean(runs['normal']['cpu_seconds'].values())
        checks += [('Best more stylised than Normal on both style figures',
                    best[KEYS[0]] < normal[KEYS[0]] and best[KEYS[1]] < normal[KEYS[1]]),
                   ('Best edge F no more than 0.02 below Normal\'s (%+.3f)'
                    % (best[KEYS[2]] - normal[KEYS[2]]), best[KEYS[2]] >= normal[KEYS[2]] - 0.02),
                   ('Best within 5x Normal\'s CPU time (%.1fx)' % ratio, ratio <= 5)]
    if 'neural-style' in runs:
        # the recipe is judged against Normal on the pairs it ran on
        ns = {k: mean(scores['neural-style', p][k] for p in recipe_pairs) for k in KEYS}
        normal = {k: mean(scores['normal', p][k] for p in recipe_pairs) for k in KEYS}
        ratio = mean(runs['neural-style']['cpu_seconds'].values()) / \
            mean(runs['normal-fp32']['cpu_seconds'].values())
        checks += [('Normal judged at least as good as the recipe (style emb, gray, edge F, '
                    'SWD)', normal[KEYS[0]] <= ns[KEYS[0]] and normal[KEYS[1]] <= ns[KEYS[1]]
                    and normal[KEYS[2]] >= ns[KEYS[2]] and normal[KEYS[3]] <= ns[KEYS[3]]),
                   ('Normal >= 10x faster than the recipe, both in float32 (%.1fx CPU time)'
                    % ratio,
                    ratio >= 10)]
    print('\nTargets')
    for text, ok in checks:
        print('  %-4s %s' % ('ok' if ok else 'MISS', text))


def print_curve(strengths, scores, pairs):
    """Judged grey style against strength, Normal otherwise (1 is Normal's own run)."""
    ladder = sorted(set(strengths) | {1.0})
    name = {s: 'normal' if s == 1.0 else 'strength-%g' % s for s in ladder}
    print('\nStrength curve: style emb gray (edge F), Normal otherwise')
    print('%-26s' % 'pair' + ''.join('%16g' % s for s in ladder))
    grey = {}
    for p in pairs + ['mean']:
        cells = []
        for s in ladder:
            if p == 'mean':
                g = mean(scores[name[s], q][KEYS[1]] for q in pairs)
                e = mean(scores[name[s], q][KEYS[2]] for q in pairs)
                grey[s] = g
            else:
                g, e = scores[name[s], p][KEYS[1]], scores[name[s], p][KEYS[2]]
            cells.append('%16s' % ('%.3f (%.3f)' % (g, e)))
        print('%-26s' % p + ''.join(cells))
    falls = all(grey[a] > grey[b] for a, b in zip(ladder, ladder[1:]))
    print('  %-4s grey style falls with every step of strength (mean over pairs)'
          % ('ok' if falls else 'MISS'))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--size', type=int, default=512)
    p.add_argument('--presets', nargs='+', default=['draft', 'normal', 'best'])
    p.add_argument('--recipe-steps', type=int, default=1000,
                   help="neural-style's L-BFGS steps (0: leave the recipe out)")
    p.add_argument('--pairs', nargs='+', default=list(PAIRS), choices=list(PAIRS))
    p.add_argument('--recipe-pairs', nargs='+', choices=list(PAIRS),
                   help="pairs for neural-style's recipe and Normal in float32 (default: "
                   "--pairs; the recipe takes about 25x Normal's time per pair)")
    p.add_argument('--nnst-repo', metavar='PATH',
                   help='a checkout of nkolkin13/NeuralNeighborStyleTransfer: adds its '
                   'NNST-Opt on our VGG-16 weights, on the recipe pairs (bench/nnst_peer.py)')
    p.add_argument('--strengths', nargs='*', type=float, default=[0, 0.5, 1.25, 1.5, 1.75, 2],
                   help='Normal at these strengths too (1 is Normal itself): the strength '
                   'curve, on --strength-pairs')
    p.add_argument('--strength-pairs', nargs='+', choices=list(PAIRS),
                   default=['tubingen+starry_night', 'golden_gate+the_scream'])
    p.add_argument('--one', help=argparse.SUPPRESS)
    args = p.parse_args()
    args.recipe_pairs = args.recipe_pairs or args.pairs
    if args.one == 'step-cost':
        return step_cost(args)
    if args.one:
        return run_config(args)
    import torch
    print('nst_core Quality benchmark at %d px: %d pairs, torch %s, %d threads'
          % (args.size, len(args.pairs), torch.__version__, torch.get_num_threads()))
    configs = list(args.presets) + (['normal-fp32', 'neural-style'] if args.recipe_steps else [])
    configs += ['nnst'] if args.nnst_repo else []
    curve = ['strength-%g' % s for s in args.strengths] if 'normal' in configs else []
    runs = {c: spawn(args, c) for c in configs + curve}
    rows = [(c, pair, OUT / c / (pair + '.png')) for c in configs for pair in pairs_of(args, c)]
    rows += [('published', pair, IMAGES / 'reference' / (PAIRS[pair] + '.png'))
             for pair in args.pairs]
    rows += [(c, pair, OUT / c / (pair + '.png')) for c in curve for pair in args.strength_pairs]
    scores = judge(rows)
    if scores is None:
        print('judge not found at %s: times only' % JUDGE)
    print_tables(configs + ['published'], runs, scores, args.pairs, args.recipe_pairs)
    print_targets(runs, scores, args.pairs, args.recipe_pairs)
    if scores and curve:
        print_curve(args.strengths, scores, args.strength_pairs)
    cost = spawn(args, 'step-cost')
    print('\nStep cost (Quality loss forward+backward / bare trunk to %s, bf16 %s, %d threads)'
          % (cost['sizes']['512']['layer'], cost['bf16'], cost['threads']))
    for side, row in cost['sizes'].items():
        ratio = row['quality'] / row['trunk']
        print('  %s px: %.3f s / %.3f s = %.2fx  %s' % (side, row['quality'], row['trunk'], ratio,
                                                       'ok' if ratio <= 1.25 else 'MISS (1.25)'))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / 'results.json').write_text(json.dumps(dict(
        runs=runs, step_cost=cost,
        scores={'%s|%s' % k: {m: v[m] for m in KEYS} for k, v in (scores or {}).items()}),
        indent=1))
    print('\npictures in', OUT)


if __name__ == '__main__':
    main()
