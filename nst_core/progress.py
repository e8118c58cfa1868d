"""Progress reports and cancellation shared by every method."""
import time
from dataclasses import dataclass
from typing import Callable, Optional


class Cancelled(Exception):
    """The caller asked the job to stop."""


@dataclass(frozen=True)
class Progress:
    stage: str                  # human text, e.g. "Scale 2/3"
    step: int                   # steps done in this stage
    total: int                  # steps in this stage
    fraction: float             # of the whole job, 0..1, weighted by cost
    elapsed: float              # seconds since the job started
    eta: Optional[float]        # seconds left, None until it can be estimated
    loss: Optional[float] = None
    # picture(side) -> PIL RGB image of the current picture, longest side <= side; a
    # callable so that passing it every step costs nothing unless a reader asks for it
    picture: Optional[Callable[[int], object]] = None


class Tracker:
    """Turns (stage, step) into Progress with a cost-weighted fraction and an ETA.

    Stages are declared up front with their relative cost per step (e.g. pixels), so the
    fraction moves evenly in time across coarse and fine scales.
    """

    def __init__(self, stages, callback: Optional[Callable[[Progress], None]] = None,
                 cancel=None, clock=time.monotonic):
        # stages: list of (name, steps, cost_per_step)
        self.stages = list(stages)
        self.callback = callback
        self.cancel = cancel
        self.clock = clock
        self.start = clock()
        self._total_cost = sum(n * c for _, n, c in self.stages) or 1.0
        self._done_before = [0.0]
        for _, n, c in self.stages:
            self._done_before.append(self._done_before[-1] + n * c)
        self._first = {}            # stage -> (time, cost done) at its first step
        self._rate = None           # seconds per unit of cost, as the steps go now
        self._last = (self.start, 0.0)     # (time, cost done) at the report before

    def _eta(self, index, step, total, done, now):
        """Seconds left at the pace of the current stage's steps after its first (at the
        last stage's pace until it has two): a stage's first step also sets it up (the
        painting's statistics at that scale, the optimiser's first evaluation), 6x a step
        at Quality's first scale, and the whole run's average from the start made the first
        estimate that much too long ("step 1/100, 5 min left" for a 28 s run). None until
        a pace is known: from the second step on, or once a stage of a single step (Fast's)
        is done, at its pace."""
        last, self._last = self._last, (now, done)
        if step <= 0:
            return None
        first = self._first.setdefault(index, (now, done))
        if done > first[1]:
            self._rate = (now - first[0]) / (done - first[1])
        elif total == 1 and self._rate is None and done > last[1]:
            self._rate = (now - last[0]) / (done - last[1])
        if self._rate is None:
            return None
        return self._rate * max(0.0, self._total_cost - done)

    def check_cancel(self):
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled()

    def report(self, index, step, loss=None, total=None, picture=None):
        """Stage `index` has done `step` steps; total overrides the declared step count;
        picture: see Progress.picture."""
        self.check_cancel()
        name, declared, cost = self.stages[index]
        total = declared if total is None else total
        step = min(step, total)
        done = self._done_before[index] + step * cost * (declared / total if total else 0)
        fraction = min(1.0, done / self._total_cost)
        now = self.clock()
        elapsed = now - self.start
        eta = self._eta(index, step, total, done, now)
        if self.callback is not None:
            self.callback(Progress(name, step, total, fraction, elapsed, eta, loss, picture))
