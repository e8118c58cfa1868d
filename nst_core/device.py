"""Choosing the torch device: no global state, every caller passes the result along."""
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
