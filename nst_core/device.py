"""Choosing the torch device (no global state: every caller passes the result along), and
the CPU threads a job uses."""
import contextlib
import os

import torch


class DeviceError(RuntimeError):
    """The device asked for is not available on this machine. `details` names it and the
    devices there are, for callers that word it their own way (the worker's error event)."""

    def __init__(self, message, details=None):
        super().__init__(message)
        self.details = dict(details or {})


def _mps_available():
    mps = getattr(torch.backends, 'mps', None)
    return bool(mps and mps.is_available())


def available():
    """Device names usable here, best first."""
    names = []
    if torch.cuda.is_available():
        names.append('cuda')
    if _mps_available():
        names.append('mps')
    return names + ['cpu']


def pick(name='auto'):
    """Resolve 'auto' / 'cpu' / 'cuda' / 'mps' / 'cuda:1' to a torch.device, or raise DeviceError."""
    if name == 'auto':
        return torch.device(available()[0])
    kind = name.split(':')[0]
    if kind not in ('cpu', 'cuda', 'mps'):
        raise DeviceError('unknown device %r (use auto, cpu, cuda or mps)' % name)
    if kind not in available():
        raise DeviceError('device %r is not available here (available: %s); choose auto or cpu'
                          % (name, ', '.join(available())),
                          {'device': name, 'available': available()})
    return torch.device(name)


@contextlib.contextmanager
def idle_threads():
    """Use only the CPU threads other processes leave idle, for the duration.

    The one-pass networks (Fast, Trained) are many small ops, each ending in a barrier where
    all threads wait; when another process holds one of the cores, every barrier waits for a
    descheduled thread. Measured here with the other core busy: 1 thread took 1.1-1.6 s at
    1024 px where 2 took 2.1-3.1 s. On an idle machine nothing changes.
    """
    before = torch.get_num_threads()
    try:
        busy = os.getloadavg()[0]
    except (AttributeError, OSError):        # Windows has no load average
        busy = 0.0
    idle = int((os.cpu_count() or 1) - busy + 0.5)
    torch.set_num_threads(max(1, min(before, idle)))
    try:
        yield
    finally:
        torch.set_num_threads(before)
