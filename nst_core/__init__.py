"""nst_core: neural style transfer engine behind the Neural Style GIMP plug-in.

`nst_core.stylize` is the function (nst_core/api.py, with its options and choices).
"""
from nst_protocol import ENGINE_VERSION as __version__  # noqa: E402

from .progress import Cancelled, Progress  # noqa: E402
from .api import stylize  # noqa: E402

__all__ = ['stylize', 'Progress', 'Cancelled', '__version__']
