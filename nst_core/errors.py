"""Sorting exceptions into the protocol's error kinds, with a message a user can act on."""
from .progress import Cancelled


def _oom(exc):
    oom_types = tuple(t for t in (getattr(__import__('torch'), 'OutOfMemoryError', None),)
                      if t is not None)
    return isinstance(exc, MemoryError) or (oom_types and isinstance(exc, oom_types)) or (
        isinstance(exc, RuntimeError) and 'out of memory' in str(exc).lower())


def details(exc):
    """Extra fields for the worker's error event, so that a client words the error without
    taking the message apart (docs/protocol.md, "Errors"): a memory refusal's figures, the
    device asked for and those there are, the command that repairs the weights; or {}."""
    found = getattr(exc, 'details', None)
    fields = dict(found) if isinstance(found, dict) else {}
    from .weights.base import WeightsError
    if isinstance(exc, WeightsError):
        # raised with its repair as data (weights.base): "command" is the arguments after
        # `python -m nst_core`, which a client runs with its own interpreter
        fields.update(exc.repair())
    return fields


def classify(exc):
    """(kind, message) for an exception raised while running a job."""
    from .device import DeviceError
    from .imageio import ImageError
    from .weights.base import WeightsError
    from .remote import RemoteError
    if isinstance(exc, RemoteError):        # already worded: the remote's, or ssh's
        return exc.kind, exc.message
    if isinstance(exc, Cancelled):
        return 'cancelled', 'cancelled'
    if isinstance(exc, WeightsError):
        return 'weights', str(exc)
    if isinstance(exc, DeviceError):
        return 'device', str(exc)
    from .memory import NotEnoughMemory
    if isinstance(exc, NotEnoughMemory):
        return 'out_of_memory', str(exc)
    if _oom(exc):
        return 'out_of_memory', ('not enough memory for this size: choose a smaller output '
                                 'size or the Fast method')
    if isinstance(exc, (ImageError, ValueError)):
        return 'bad_input', str(exc)
    return 'internal', '%s: %s (this is a bug; the log has the details)' % (
        type(exc).__name__, exc)
