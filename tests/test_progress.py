"""The time left (nst_core.progress.Tracker), as GIMP's status bar shows it."""
from nst_core.progress import Tracker


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def run(stages, seconds):
    """Report every step of `stages` ((name, steps, cost)), step k of stage i taking
    seconds(i, k); [(eta shown, seconds really left)] for every report."""
    clock, shown = Clock(), []
    tracker = Tracker(stages, lambda p: shown.append((clock.now, p.eta)), clock=clock)
    tracker.report(0, 0)
    for i, (_, steps, _) in enumerate(stages):
        for k in range(1, steps + 1):
            clock.now += seconds(i, k)
            tracker.report(i, k)
    end = clock.now
    return [(eta, end - t) for t, eta in shown]


def test_a_stage_whose_first_step_also_sets_it_up_does_not_inflate_the_estimate():
    """Quality's first step also computes the painting's statistics and the optimiser's first
    evaluation: 6x a step. The old estimate (the average since the start) said 6x the time
    left at step 1 ('step 1/100, 5 min left' for a 28 s run); now nothing at step 1, and from
    step 2 on the pace of the steps."""
    # Normal at 512 px: 100 steps at 256 px (cost 1 each, 0.3 s), 20 at 512 (cost 4, 1.2 s);
    # each scale's first step takes 2 s more
    stages = [('Scale 1/2', 100, 1.0), ('Scale 2/2', 20, 4.0)]
    got = run(stages, lambda i, k: (0.3, 1.2)[i] + (2.0 if k == 1 else 0.0))
    assert got[0][0] is None and got[1][0] is None      # step 0 and step 1: not known yet
    for eta, left in got[2:]:
        assert eta is not None and abs(eta - left) <= 0.05 * left + 2.1, (eta, left)
    assert got[-1] == (0.0, 0.0)


def test_the_last_stage_is_estimated_at_its_own_pace():
    """'3 s left' took 9 s: the average pace since the start counted the first scale's cheap
    steps against the last scale's dear ones. Each stage's own pace once it has two steps."""
    stages = [('Scale 1/2', 60, 1.0), ('Scale 2/2', 6, 4.0)]
    got = run(stages, lambda i, k: (0.1, 1.5)[i])       # the last scale 3.75x dearer per pixel
    last = got[-6:-1]                                   # steps 2..6 of the last scale
    for eta, left in last[1:]:
        assert abs(eta - left) < 0.01, (eta, left)


def test_a_single_step_stage_uses_the_pace_before_it():
    stages = [('Painting', 10, 1.0), ('Adding detail', 1, 2.0)]
    got = run(stages, lambda i, k: 1.0 if i == 0 else 2.0)
    assert got[-1][0] == 0.0
    eta_before_last, left = got[-2]
    assert abs(eta_before_last - left) < 0.01


def test_stages_of_one_step_give_a_figure_once_the_first_is_done():
    """Fast: reading the style (one step), painting (one step), adding detail (bands)."""
    stages = [('Reading the style', 1, 1.0), ('Stylizing', 1, 3.0), ('Adding detail', 4, 0.5)]
    got = run(stages, lambda i, k: (1.0, 3.0, 0.5)[i])
    assert all(eta is not None and abs(eta - left) < 0.01 for eta, left in got[1:]), got
