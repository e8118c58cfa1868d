"""How many Quality (Gatys) steps does init='fast' save over init='content'?

    python bench/bench_fast_init.py [--size 200] [--steps 150] [--images DIR]

Runs Quality at one scale (a size small enough that the schedule has a single scale) from
the content and from the Fast result, with the same seed, weights and steps, recording the
total loss after every step. Reports, per image pair, the final loss of each, and the step at
which init='fast' first reaches the loss that init='content' has at its last step (and at
steps 10, 25, 50), i.e. how many steps the warm start saves. Needs the VGG and Magenta weights (fetched if missing).
"""
import argparse
import time
from pathlib import Path

from PIL import Image

from nst_core.api import stylize

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_IMAGES = ROOT.parent / 'shared' / 'data' / 'images' / 'inputs'
PAIRS = [('tubingen.jpg', 'starry_night.jpg'), ('golden_gate.jpg', 'the_scream.jpg')]


def loss_curve(content, style, init, size, steps):
    losses = []

    def record(p):
        if p.loss is not None and p.step > 0:
            losses.append(p.loss)

    start = time.perf_counter()
    stylize(content, [style], method='quality', init=init, size=size, iterations=steps,
            seed=0, callback=record, log=lambda *a: None)
    return losses, time.perf_counter() - start


def first_below(curve, target):
    return next((i + 1 for i, loss in enumerate(curve) if loss <= target), None)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--size', type=int, default=200)
    ap.add_argument('--steps', type=int, default=150)
    ap.add_argument('--images', default=str(DEFAULT_IMAGES))
    args = ap.parse_args(argv)
    print('| pair | steps | final loss (content init) | final loss (fast init) | '
          'fast init reaches it at step | steps saved | s (content / fast) |')
    print('|---|---|---|---|---|---|---|')
    for c_name, s_name in PAIRS:
        content = Image.open(Path(args.images) / c_name).convert('RGB')
        style = Image.open(Path(args.images) / s_name).convert('RGB')
        base, t_base = loss_curve(content, style, 'content', args.size, args.steps)
        warm, t_warm = loss_curve(content, style, 'fast', args.size, args.steps)
        at = first_below(warm, base[-1])
        print('| %s + %s | %d | %.4g | %.4g | %s | %s | %.0f / %.0f |' % (
            c_name, s_name, len(base), base[-1], warm[-1], at if at else 'never',
            (len(base) - at) if at else 0, t_base, t_warm))
        for k in (10, 25, 50, 100):
            if k <= min(len(base), len(warm)):
                at = first_below(warm, base[k - 1])
                print('|   at step %d | | %.4g | %.4g | %s | %s | |' % (
                    k, base[k - 1], warm[k - 1], at or 'never', (k - at) if at else 0))


if __name__ == '__main__':
    main()
