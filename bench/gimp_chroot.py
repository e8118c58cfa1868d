"""Where tests/gimp/run.sh caches its Debian chroot with real GIMP (its CACHE and ROOT),
for benchmarks that put files into it or read what it made."""
import os
from pathlib import Path


def chroot_root():
    cache = os.environ.get('NS_GIMP_CACHE') or os.path.join(
        os.environ.get('XDG_CACHE_HOME') or os.path.expanduser('~/.cache'),
        'neural-style-gimp-chroot')
    return Path(cache) / ('%s-root' % os.environ.get('SUITE', 'trixie'))
