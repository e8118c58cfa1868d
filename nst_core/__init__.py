"""nst_core: neural style transfer engine behind the Neural Style GIMP plug-in.

`nst_core.stylize` is the function; its module is `sys.modules['nst_core.stylize']`. The
function is bound eagerly so that it, not the submodule, owns the name.
"""
__version__ = '0.1.0'

from .progress import Cancelled, Progress  # noqa: E402
from .stylize import stylize  # noqa: E402

__all__ = ['stylize', 'Progress', 'Cancelled', '__version__']
