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


# The scales up to this side hold the picture to the photo; finer ones hold it to the picture
# they start from (the scale below's, enlarged) plus the photo's detail of their own size
# (gatys.photo_detail). Held to the photo itself, relu4_2 at 2048 px - seeing a quarter of
# the picture it sees at 1024 px - pulled a 2048 px result back towards the photo: judged at
# 512 px, grey style ratio 0.324 against the 1024 px result's 0.266 (two_wings +
# starry_night); held this way, 0.246, edge F 0.517 against 0.518 (docs/quality.md). The
# recipe was tuned at 512-1024 px.
CONTENT_SIDE = 1024


@dataclass(frozen=True)
class Scale:
    size: int      # longest side in pixels
    steps: int
    photo: bool = True   # the content target is the photo (sizes up to CONTENT_SIDE)


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
    return [Scale(size, n, size <= CONTENT_SIDE) for size, n in zip(scales, steps)]
