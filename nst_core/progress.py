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
        elapsed = self.clock() - self.start
        # from the first step on: a rough figure that settles beats none (GIMP's status bar
        # said nothing about the time left until 2 % of the work was done)
        eta = elapsed * (1 - fraction) / fraction if fraction > 0 and step > 0 else None
        if self.callback is not None:
            self.callback(Progress(name, step, total, fraction, elapsed, eta, loss, picture))
