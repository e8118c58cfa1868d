"""A VGG the user names by path: their own torchvision-style VGG-16/19 state dict.

It is not copied into the cache and has no pinned hash (the user vouches for it), but it is
loaded the same safe way (weights_only=True) and checked key by key, so a wrong file is a
clear error and never a crash deep inside a run.
"""
from pathlib import Path

from .base import WeightsError
from .cache import torch_load_plain
from .torchvision_vgg import features_state

SUFFIXES = ('.pth', '.pt')


def looks_like_path(model: str) -> bool:
    return (any(model.endswith(s) for s in SUFFIXES) or '/' in model or '\\' in model
            or Path(model).expanduser().is_file())


def load_user_vgg(path):
    """(arch, features state dict) of a user's VGG file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise WeightsError('VGG weights file %s does not exist' % path)
    state = torch_load_plain(path, hint='give a torchvision VGG-16/19 state dict (.pth) saved '
                                        'with torch.save(model.state_dict(), path)')
    for wrapper in ('state_dict', 'model'):  # common checkpoint layouts
        if wrapper in state and isinstance(state[wrapper], dict):
            state = state[wrapper]
    return features_state(state, str(path))
