"""Coarse-to-fine schedules: optimise small, upsample, refine.

The picture's large structure - strokes the size of the painting's, swirls across the sky -
settles at low resolution, where a step costs about a quarter of a step at twice the size
(0.3 s vs 1.0-1.5 s at 256 vs 512 px here); the finer scales then add detail. So the coarsest
scale gets many steps, the middle ones fewer and the final one fewest.

The coarse steps are spent on that look, not on the loss: judged by the loss at the final size
alone, plain L-BFGS there from the content gets further for the same time. Judged as pictures
(bench/bench_quality.py, docs/quality.md), more final-scale steps make Normal more
photo-like, not better. Best is another method (quality.RECIPES) on Normal's layout steps:
with 2.5x the steps it was judged less stylised and less faithful at once (docs/quality.md).
"""
from dataclasses import dataclass

# Coarsest scale's longest side. At 128 px relu4_2 is 16x12 and holds too little of the
# content: 100 steps there repaint a street scene beyond recognition, and later scales cannot
# bring it back. At 192 px and above the content survives (measured on tubingen/starry_night).
MIN_SIZE = 192
PRESETS = {        # steps at the coarsest, each middle and the final scale
    'draft': (60, 20, 6),
    'normal': (100, 40, 20),
    'best': (100, 40, 20),
}


# The picture's layout - strokes, colours, what becomes of the photo's shapes - is painted
# coarse to fine up to this size, as the recipe was tuned and judged (docs/quality.md). A
# larger output refines it an octave at a time (REFINE): held to it, for the painting's
# texture and sharper strokes of that size, and it gets the photo's own finer edges
# (detail.py). Coarse to fine all the way up (the old way) painted a 2560 px picture in 20x
# the 512 px picture's time, and less stylised: judged at 512 px, grey style ratio 0.324
# against 0.266 at 2048 px.
LAYOUT_SIDE = 512
# The octaves above the layout that are optimised: halving from the output's size while at
# least 1.5x the layout (the output's own octave is only enlarged with the photo's detail,
# at most 2x: it would cost the most); up to FULL_TRUNK_SIDE on the whole VGG, above it on
# VGG up to relu3_1 (the brushwork's layers; two fifths of the trunk's work per pixel), for
# REFINE[preset] steps each.
REFINE = {'draft': 5, 'normal': 10, 'best': 20}
FULL_TRUNK_SIDE = 1600


@dataclass(frozen=True)
class Scale:
    size: int      # longest side in pixels
    steps: int
    refine: bool = False    # an octave above the layout (see LAYOUT_SIDE)


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
    """The scales for an output whose longest side is `final`: the layout's (up to
    LAYOUT_SIDE), then the octaves refined above it. The output itself is the last scale
    when it is no larger than LAYOUT_SIDE; otherwise the last scale's picture is enlarged
    to it (detail.enlarge).

    iterations, if given, replaces the step count of the layout's finest scale (of the only
    scale, for outputs too small to have coarser ones).
    """
    coarse, middle, fine = PRESETS[preset]
    layout = sizes(min(final, LAYOUT_SIDE))
    steps = [coarse] + [middle] * (len(layout) - 2) + [fine] if len(layout) > 1 else [coarse]
    if iterations is not None:
        steps[-1] = iterations
    octaves = []
    size = final // 2
    while size >= LAYOUT_SIDE * 3 // 2:       # a step from the layout worth refining
        octaves.append(size)
        size //= 2
    return [Scale(size, n) for size, n in zip(layout, steps)] + \
        [Scale(size, REFINE[preset], True) for size in octaves[::-1]]
