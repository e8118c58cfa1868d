"""nst_core: neural style transfer engine behind the Neural Style GIMP plug-in."""
__version__ = '0.1.0'

from .progress import Cancelled, Progress  # noqa: E402  (torch-free)


def __getattr__(name):
    # stylize pulls in torch (2 s); importing nst_core.protocol must stay cheap.
    if name == 'stylize':
        from .stylize import stylize
        return stylize
    raise AttributeError(name)


__all__ = ['stylize', 'Progress', 'Cancelled', '__version__']
