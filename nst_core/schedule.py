"""Coarse-to-fine schedules: optimise small, upsample, refine.

The picture's large structure - strokes the size of the painting's, swirls across the sky -
settles at low resolution, where a step costs about a quarter of a step at twice the size
(0.3 s vs 1.0-1.5 s at 256 vs 512 px here); the finer scales then add detail. So the coarsest
scale gets many steps, the middle ones fewer and the final one fewest.

The coarse steps are spent on that look, not on the loss: judged by the loss at the final size
alone, plain L-BFGS there from the content gets further for the same time. Judged as pictures
(bench/bench_quality.py, docs/quality.md), more final-scale steps make Normal more
photo-like, not better; Best's extra steps mostly clean the grain at full size.
"""
from dataclasses import dataclass

# Coarsest scale's longest side. At 128 px relu4_2 is 16x12 and holds too little of the
# content: 100 steps there repaint a street scene beyond recognition, and later scales cannot
# bring it back. At 192 px and above the content survives (measured on tubingen/starry_night).
MIN_SIZE = 192
PRESETS = {        # steps at the coarsest, each middle and the final scale
    'draft': (60, 20, 6),
    'normal': (100, 40, 20),
    'best': (250, 100, 50),
}


@dataclass(frozen=True)
class Scale:
    size: int      # longest side in pixels
    steps: int


def sizes(final: int, min_size: int = MIN_SIZE):
    """Longest sides from coarse to fine, halving from `final` while >= min_size.

    (Scales sqrt(2) apart, as crowsonkb's style-transfer-pytorch, judged no better at 512 px
    for the same steps: docs/quality.md.)
    """
    out = [final]
    while out[-1] // 2 >= min_size:
        out.append(out[-1] // 2)
    return out[::-1]


def plan(final: int, preset: str = 'normal', iterations=None):
    """The scales for an output whose longest side is `final`.

    iterations, if given, replaces the step count of the final scale (of the only scale,
    for outputs too small to have coarser ones).
    """
    coarse, middle, fine = PRESETS[preset]
    scales = sizes(final)
    steps = [coarse] + [middle] * (len(scales) - 2) + [fine] if len(scales) > 1 else [coarse]
    if iterations is not None:
        steps[-1] = iterations
    return [Scale(size, n) for size, n in zip(scales, steps)]
