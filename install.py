#!/usr/bin/env python3
"""Install the Neural Style plug-in for GIMP 3 and the environment its worker runs in.

    python3 install.py                    # venv + nst_core + weights + plug-in + config
    python3 install.py --dry-run          # show every step, change nothing
    python3 install.py --uninstall        # remove the plug-in and the venv (weights kept)
    python3 install.py --worker-only      # on a GPU box: the engine alone, no GIMP there
    python3 install.py --remote me@gpu-box   # here: GIMP's jobs run on that box, over ssh

Steps: find GIMP 3's profiles, create (or reuse) a venv, pip-install nst_core from this
checkout into it, copy plugin/neural_style/ into each profile's plug-ins folder with
nst_protocol.py beside it, write neural_style.json (JSON data, never
executed) naming the venv's interpreter, then fetch and verify the weights. --worker-only
leaves out the GIMP steps; --remote does only those, with a config naming the engine on the
other computer, which it asks over ssh first (docs/remote.md).
See docs/install.md. Standard library only: this runs before any venv exists.
"""
from __future__ import print_function   # so that Python 2 reaches the version message below

import sys

MIN_PYTHON = (3, 9)

if sys.version_info < MIN_PYTHON:   # before the imports an old Python lacks (pathlib on 2.7)
    sys.exit('error: this is Python %d.%d (%s); install.py needs Python 3.9 or newer. Run it '
             'with a newer one, e.g. python3.12 install.py' % (sys.version_info[:2] +
                                                                (sys.executable,)))

import argparse  # noqa: E402
import collections
import contextlib
import getpass
import json
import os
import re
import shlex
import shutil
import socket
import stat
import subprocess
import tempfile
from pathlib import Path, PurePosixPath
from urllib.parse import quote, urlsplit

import nst_client    # beside this file too: the worker client, whose ssh command --remote uses
import nst_protocol  # beside this file: the stdlib-only contract, importable before any venv

CONFIG_VERSION = 1
PLUGIN = 'neural_style'                    # folder and file name GIMP requires to match
CONFIG_NAME = 'neural_style.json'
PROTOCOL_COPY = 'nst_protocol.py'
CLIENT_COPY = 'nst_client.py'   # the worker client: stdlib, shared with the engine's shell
VENV_MARKER = 'neural-style-installer.json'    # "this installer created the venv"
PARENT_PTH = 'neural_style_parent_site.pth'
DEVICES = ('auto', 'cpu', 'cuda', 'mps')
CORE_MODULES = ('torch', 'torchvision', 'PIL', 'numpy')
# Needed only to convert downloaded weights once (setup.cfg extra "convert").
CONVERT_MODULES = ('h5py', 'onnx')      # import names = package names
CHECKOUT = Path(__file__).resolve().parent
MENU = 'Filters > Artistic > Neural Style...'
# PyTorch's own index of CPU-only wheels. PyPI's Linux x86-64 torch is the CUDA build: its
# nvidia-* dependencies make a venv of about 5.5 GB; the CPU build is under 1 GB and computes
# the same on a CPU (same oneDNN kernels).
CPU_INDEX = 'https://download.pytorch.org/whl/cpu'
TORCH_PACKAGES = ('torch', 'torchvision')
PROBE_SECONDS = 10
TAIL_LINES = 25

# system: linux|darwin|win32; machine: platform.machine() (None: this machine's)
Where = collections.namedtuple('Where', 'system env home machine', defaults=(None,))
Profile = collections.namedtuple('Profile', 'path version kind')  # kind: native|flatpak|snap|...


class InstallError(Exception):
    """A step failed; the message says what happened and what to do."""


class DiskFull(InstallError):
    """pip ran out of disk space: retrying from another index would not help."""


# ---------------------------------------------------------------- where things live

def this_machine():
    system = 'win32' if sys.platform in ('win32', 'cygwin') else \
        'darwin' if sys.platform == 'darwin' else 'linux'
    return Where(system, dict(os.environ), Path.home())


def _env_dir(where, name, fallback):
    """An absolute directory from an environment variable, else the fallback."""
    value = where.env.get(name)
    return Path(value) if value and os.path.isabs(value) else fallback


def default_venv(where):
    if where.system == 'win32':
        base = _env_dir(where, 'LOCALAPPDATA', where.home / 'AppData' / 'Local')
    elif where.system == 'darwin':
        base = where.home / 'Library' / 'Application Support'
    else:
        base = _env_dir(where, 'XDG_DATA_HOME', where.home / '.local' / 'share')
    return base / 'neural-style' / 'venv'


def venv_python(venv, system):
    return venv / 'Scripts' / 'python.exe' if system == 'win32' else venv / 'bin' / 'python'


def gimp_config_roots(where):
    """(kind, folder) pairs where GIMP keeps one profile per version, e.g. <folder>/3.0."""
    home = where.home
    if where.system == 'win32':
        return [('native', _env_dir(where, 'APPDATA', home / 'AppData' / 'Roaming') / 'GIMP')]
    if where.system == 'darwin':
        return [('native', home / 'Library' / 'Application Support' / 'GIMP')]
    return [('native', _env_dir(where, 'XDG_CONFIG_HOME', home / '.config') / 'GIMP'),
            ('flatpak', home / '.var' / 'app' / 'org.gimp.GIMP' / 'config' / 'GIMP'),
            ('snap', home / 'snap' / 'gimp' / 'current' / '.config' / 'GIMP')]


def find_gimp_profiles(where):
    """Every GIMP profile folder on this machine, GIMP 3 or not, newest version first.

    $GIMP3_DIRECTORY replaces the per-version folders for GIMP 3, exactly as GIMP does.
    """
    custom = where.env.get('GIMP3_DIRECTORY')
    if custom:
        return [Profile(Path(custom), (3, 0), 'GIMP3_DIRECTORY')] if Path(custom).is_dir() else []
    found, seen = [], set()
    for kind, root in gimp_config_roots(where):
        if not root.is_dir():
            continue
        for entry in sorted(root.iterdir()):
            match = re.fullmatch(r'(\d+)\.(\d+)', entry.name)
            key = os.path.realpath(entry)   # inside Flatpak, native and flatpak paths coincide
            if match and entry.is_dir() and key not in seen:
                seen.add(key)
                found.append(Profile(entry, (int(match[1]), int(match[2])), kind))
    return sorted(found, key=lambda p: p.version, reverse=True)


def is_gimp3(profile):
    return profile.version[0] == 3


def sandbox_warning(profile, where):
    """Why a sandboxed GIMP may be unable to start the worker, or None."""
    if profile.kind == 'flatpak' and not where.env.get('FLATPAK_ID'):
        return ('%s belongs to the Flatpak GIMP: its sandbox hides this system\'s /usr, so it '
                'may be unable to start the worker interpreter. See "Flatpak and Snap" in '
                'docs/install.md.' % profile.path)
    if profile.kind == 'snap':
        return ('%s belongs to the Snap GIMP: strict confinement may stop it from starting the '
                'worker interpreter. See "Flatpak and Snap" in docs/install.md.' % profile.path)
    return None


def no_gimp3_message(profiles, where):
    looked = [str(root) for _, root in gimp_config_roots(where)]
    if where.env.get('GIMP3_DIRECTORY'):
        looked = ['$GIMP3_DIRECTORY=%s (does not exist)' % where.env['GIMP3_DIRECTORY']]
    lines = ['No GIMP 3 profile found (looked in: %s).' % ', '.join(looked)]
    others = [p for p in profiles if not is_gimp3(p)]
    if others:
        lines.append('Found only %s: that is not GIMP 3. This plug-in needs GIMP 3.0 or newer '
                     '(GIMP 2.10 cannot load GIMP 3 Python plug-ins); install GIMP 3.' %
                     ', '.join('GIMP %d.%d profile %s' % (p.version + (p.path,)) for p in others))
    lines.append('Start GIMP 3 once (it creates its profile folder), then run this again, or '
                 'pass --gimp-plugins-dir DIR naming the plug-ins folder of your GIMP 3 '
                 'profile (GIMP: Edit > Preferences > Folders > Plug-ins).')
    return '\n'.join(lines)


def plugin_dir_from_option(text):
    """The plug-ins folder the user named; a profile folder is taken to mean its plug-ins/."""
    path = Path(text).expanduser().absolute()
    if path.name != 'plug-ins' and any((path / f).exists() for f in ('gimprc', 'pluginrc',
                                                                     'sessionrc')):
        return path / 'plug-ins'
    return path


def choose_plugin_dirs(args, where):
    """[(plug-ins folder, Profile or None)] to install into: named ones, else every GIMP 3 one.

    Every GIMP 3 profile, not only the newest: someone with both 3.0 and 3.2 expects the
    filter in both.
    """
    if args.gimp_plugins_dir:
        chosen = [(plugin_dir_from_option(d), None) for d in args.gimp_plugins_dir]
        for d, _ in chosen:
            if not d.parent.is_dir():
                raise InstallError('--gimp-plugins-dir %s: its parent folder does not exist; name '
                                   'the plug-ins folder of an existing GIMP 3 profile.' % d)
        return chosen
    profiles = find_gimp_profiles(where)
    gimp3 = [p for p in profiles if is_gimp3(p)]
    if not gimp3:
        raise InstallError(no_gimp3_message(profiles, where))
    return [(p.path / 'plug-ins', p) for p in gimp3]


# ---------------------------------------------------------------- doing (or showing) it

class Actions:
    """Every change goes through here, so --dry-run shows the same steps and changes nothing."""

    def __init__(self, dry_run, out=None):
        self.dry_run = dry_run
        self.out = out or (lambda text: print(text, flush=True))

    def say(self, text):
        self.out(('[dry run] would ' + text) if self.dry_run else text)

    def mkdir(self, path):
        if not path.is_dir():
            self.say('create folder %s' % path)
            if not self.dry_run:
                path.mkdir(parents=True, exist_ok=True)

    def write(self, path, data, executable=False, show=False):
        self.say('write %s%s%s' % (path, ' (executable)' if executable else '',
                                   ':\n' + data.decode() if show else ''))
        if self.dry_run:
            return
        tmp = path.with_name(path.name + '.part')
        tmp.write_bytes(data)
        if executable:
            make_executable(tmp)
        os.replace(tmp, path)

    def remove_tree(self, path):
        self.say('remove %s' % path)
        if not self.dry_run:
            shutil.rmtree(path)

    def run(self, cmd, what, advice, cwd=None, env=None):
        """Run a command, echo its output, and on failure raise with the tail of it."""
        self.say('run: %s' % ' '.join(map(str, cmd)))
        if self.dry_run:
            return
        tail = collections.deque(maxlen=TAIL_LINES)
        try:
            proc = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=cwd, env=env, universal_newlines=True, errors='replace')
        except OSError as e:
            raise InstallError('%s failed: cannot run %s (%s).\n%s' % (what, cmd[0], e, advice))
        for line in proc.stdout:
            line = line.rstrip()
            tail.append(line)
            self.out('    ' + line)
        code = proc.wait()
        if code != 0:
            how = 'exit code %d' % code if code > 0 else 'killed by signal %d' % -code
            raise InstallError('%s failed (%s). Last lines of its output:\n%s\n%s' % (
                what, how, '\n'.join('    ' + t for t in tail), advice))


def make_executable(path):
    mode = path.stat().st_mode
    # x wherever r is set: GIMP runs the plug-in as the user, possibly through a group.
    path.chmod(mode | stat.S_IXUSR | ((mode & 0o044) >> 2))


# ---------------------------------------------------------------- the Python side

ANSWER = '@@neural-style-install@@ '    # marks our line: libraries may print to stdout too

PROBE = r"""
import json, sys, sysconfig
try:
    import venv, ensurepip
    has_venv = True
except ImportError:
    has_venv = False
answer = {"version": list(sys.version_info[:3]), "executable": sys.executable,
          "in_venv": sys.prefix != getattr(sys, "base_prefix", sys.prefix),
          "purelib": sysconfig.get_paths()["purelib"],
          "platlib": sysconfig.get_paths()["platlib"], "has_venv": has_venv}
"""


def ask(python, code, *argv):
    """Run `code` in `python` (nothing written, not even bytecode) and return the JSON value
    it leaves in `answer`, or raise OSError / ValueError / subprocess.TimeoutExpired.

    The value travels on a marked line: C libraries (Debian's torch and its UCX, for one) may
    print their own lines on stdout, which must not end up in a config.
    """
    script = 'import json\n%s\nprint(%r + json.dumps(answer))\n' % (code, ANSWER)
    out = subprocess.run([str(python), '-c', script] + list(argv), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, universal_newlines=True, timeout=120,
                         env=dict(os.environ, PYTHONDONTWRITEBYTECODE='1'),
                         cwd=tempfile.gettempdir())   # not the checkout: its nst_core would win
    lines = [ln[len(ANSWER):] for ln in out.stdout.splitlines() if ln.startswith(ANSWER)]
    if out.returncode != 0 or not lines:
        raise ValueError('exit code %d: %s' % (out.returncode, out.stderr.strip()[-500:]))
    return json.loads(lines[-1])


def probe(python):
    """Facts about an interpreter (version, venv module, site-packages), without side effects."""
    try:
        facts = ask(python, PROBE)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise InstallError('Cannot run the Python interpreter %s (%s). Pass --python with the '
                           'path of a Python >= %d.%d.' % ((python, e) + MIN_PYTHON))
    except ValueError as e:
        raise InstallError('%s does not behave like a Python interpreter (%s).\nPass --python '
                           'with the path of a Python >= %d.%d.' % ((python, e) + MIN_PYTHON))
    facts['version'] = tuple(facts['version'])
    return facts


def check_python_version(version, what):
    if tuple(version[:2]) < MIN_PYTHON:
        raise InstallError('%s is Python %s; Neural Style needs Python %d.%d or newer. Install a '
                           'newer Python and pass it with --python.' %
                           ((what, '.'.join(map(str, version[:3]))) + MIN_PYTHON))


def check_venv_module(facts, system):
    if not facts['has_venv']:
        hint = ('On Debian/Ubuntu: sudo apt install python3-venv (or python%d.%d-venv).' %
                facts['version'][:2]) if system == 'linux' else \
            'Install a Python that includes the venv and ensurepip modules (python.org).'
        raise InstallError('%s has no working venv module (venv/ensurepip are missing), so it '
                           'cannot create the worker\'s virtual environment.\n%s' %
                           (facts['executable'], hint))


def read_pyvenv_cfg(venv):
    cfg = {}
    try:
        for line in (venv / 'pyvenv.cfg').read_text().splitlines():
            key, sep, value = line.partition('=')
            if sep:
                cfg[key.strip()] = value.strip()
    except OSError:
        pass
    return cfg


def venv_created_here(venv):
    return (venv / VENV_MARKER).is_file()


def venv_problem(venv, python, system_site):
    """Why an existing venv cannot serve the worker as it is, or None."""
    if not python.exists():
        return 'it has no %s (not a venv, or its base Python was removed)' % python.name
    try:
        version = probe(python)['version']
    except InstallError:
        return 'its Python does not run'
    if tuple(version[:2]) < MIN_PYTHON:
        return 'it has Python %d.%d' % version[:2]
    has_site = read_pyvenv_cfg(venv).get('include-system-site-packages', 'false') == 'true'
    if has_site != system_site:
        return 'it was created %s --system-site-packages' % ('with' if has_site else 'without')
    if missing_modules(python, ['pip']):
        return 'it has no pip'
    return None


def ensure_venv(venv, base, system_site, system, act):
    """Reuse the venv when it works as asked; else create it (again, if this script made it)."""
    python = venv_python(venv, system)
    if venv.is_dir() and any(venv.iterdir()):
        problem = venv_problem(venv, python, system_site)
        if problem is None:
            act.out('Reusing the existing venv %s' % venv)
            return python
        if not venv_created_here(venv):
            raise InstallError('%s cannot be used: %s. Choose another --venv, or repair or '
                               'remove that folder.' % (venv, problem))
        check_venv_module(base, system)
        act.out('The venv %s must be recreated: %s.' % (venv, problem))
        act.remove_tree(venv)
    check_venv_module(base, system)
    cmd = [base['executable'], '-m', 'venv'] + (['--system-site-packages'] if system_site else [])
    act.run(cmd + [venv], 'Creating the venv',
            'If this says ensurepip is not available: sudo apt install python3-venv, then '
            'delete %s and run this again.' % venv)
    act.write(venv / VENV_MARKER, json.dumps({'created_by': 'neural-style install.py',
                                              'checkout': str(CHECKOUT)}).encode())
    return python


def inherit_parent_site(venv_py, base, act):
    """--system-site-packages from an interpreter that is itself in a venv.

    venv bases a new venv on the *base* interpreter, so that venv's packages (its torch)
    would be invisible; a .pth line per parent site folder makes them importable, after the
    new venv's own packages.
    """
    folders = unique([base['purelib'], base['platlib']])
    if act.dry_run:
        act.say('add %s\'s site-packages (%s) to the new venv through %s' %
                (base['executable'], ', '.join(folders), PARENT_PTH))
        return
    site_dir = Path(probe(venv_py)['purelib'])
    act.write(site_dir / PARENT_PTH, ''.join(f + '\n' for f in folders).encode())


def missing_modules(python, modules):
    """Those of `modules` that `python` cannot import (found without importing them)."""
    code = ('import importlib.util, sys\n'
            'answer = [m for m in sys.argv[1:] if importlib.util.find_spec(m) is None]')
    try:
        return ask(python, code, *modules)
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return list(modules)


def pip_advice(venv):
    return ('What to do: pip needs to reach the package index (check the network or proxy, '
            'e.g. HTTPS_PROXY); with torch already on the system, run again with '
            '--system-site-packages; if the venv is broken, delete %s and run again.' % venv)


def run_pip(act, cmd, what, venv):
    """act.run for pip, whose failure for a full disk must not be blamed on the network."""
    try:
        act.run(cmd, what, pip_advice(venv))
    except InstallError as e:
        if 'No space left on device' not in str(e):
            raise
        head = str(e).rsplit('\nWhat to do:', 1)[0]
        raise DiskFull('%s\nWhat to do: the disk is full. Free space on the disk of %s and '
                           'of the temporary folder (%s), or choose a --venv on another disk; '
                           "pip's download cache can be emptied with: pip cache purge. Then run "
                           'again.' % (head, venv, tempfile.gettempdir()))


GB = 1e9
# Disk a torch install takes: (bytes left in the venv, bytes pip downloads and unpacks in the
# temporary folder while it works). PyPI's CUDA build, measured with install.py on Linux
# x86-64: 8.9 GB above the start at the peak, 5.5 GB after. The others from wheel sizes.
ROOM = {'pypi-cuda': (5.5 * GB, 3.4 * GB), 'cpu': (1.0 * GB, 0.4 * GB),
        'pypi': (1.5 * GB, 0.5 * GB)}


def existing_parent(path):
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_room(source_name, venv, act, free=lambda path: shutil.disk_usage(path).free,
               device=lambda path: os.stat(path).st_dev):
    """Refuse, before pip downloads gigabytes, when the venv's disk (and the temporary
    folder's) cannot hold the torch `source_name` costs: a full disk half-way through leaves
    a broken venv and pip's message blames nothing in particular."""
    if source_name not in ROOM:
        return                           # the user's own index: its size is unknown
    stays, passes = ROOM[source_name]
    places = {}
    for path, size in ((existing_parent(venv), stays), (Path(tempfile.gettempdir()), passes)):
        key = device(path)
        where, need = places.get(key, (path, 0))
        places[key] = (where, need + size)
    for where, need in places.values():
        have = free(where)
        if have >= need:
            continue
        text = ('Not enough disk space for torch: %s has %.1f GB free, and this torch needs '
                'about %.1f GB there while pip installs it (%.1f GB stay in the venv %s). '
                'Free space, choose a --venv on a disk with room (and TMPDIR for pip\'s '
                'downloads), or use the system\'s torch with --system-site-packages.'
                % (where, have / GB, need / GB, stays / GB, venv))
        if act.dry_run:
            act.out('warning: ' + text)
            return
        raise InstallError(text)


TorchSource = collections.namedtuple('TorchSource', 'name index why')
# What each way of getting torch costs, said before pip starts (docs/install.md, "Which torch").
COSTS = {
    'cpu': 'about 0.2 GB to download, under 1 GB installed; CPU only (this machine has no '
           'NVIDIA GPU)',
    'pypi-cuda': "PyPI's Linux build with CUDA: about 3 GB to download and 5.5 GB installed "
                 '(the nvidia-* packages); it runs on the CPU too',
    'pypi': "PyPI's build for this platform",
    'user': 'whatever your pip configuration (PIP_INDEX_URL / PIP_EXTRA_INDEX_URL / pip.conf) '
            'gives',
}


def has_nvidia_gpu(where):
    """An NVIDIA driver is loaded (Linux: its /proc entry), or nvidia-smi lists a GPU."""
    if where.system == 'linux' and os.path.exists('/proc/driver/nvidia/version'):
        return True
    smi = shutil.which('nvidia-smi', path=where.env.get('PATH'))
    if not smi:
        return False
    try:
        out = subprocess.run([smi, '-L'], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             universal_newlines=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and 'GPU' in out.stdout


def index_reachable(url, timeout=PROBE_SECONDS):
    """(True, '') when `url`/torch/ answers like a package index, else (False, why)."""
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen(url.rstrip('/') + '/torch/', timeout=timeout) as r:
            page = r.read(1 << 20).decode('utf-8', 'replace')
    except urllib.error.HTTPError as e:
        return False, 'HTTP %d' % e.code
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, 'reason', e)
        return False, str(reason) or type(e).__name__
    if 'torch-' not in page:
        return False, 'it lists no torch wheels'
    return True, ''


def wants_cpu_wheels(where):
    """Only PyPI's Linux x86-64 torch bundles CUDA; its Windows, macOS and ARM wheels do not."""
    import platform
    machine = (where.machine or platform.machine()).lower()
    return where.system == 'linux' and machine in ('x86_64', 'amd64')


def choose_torch_source(option, where, act, gpu=None, probe_index=index_reachable):
    """Where pip gets torch: PyTorch's CPU-only index on a Linux x86-64 machine without an
    NVIDIA GPU when that index answers, else PyPI; the user's own pip index settings win.
    The choice and its cost are said before anything is downloaded."""
    env = where.env
    if option == 'pypi':
        source = TorchSource('pypi-cuda' if wants_cpu_wheels(where) else 'pypi', None,
                             '--torch-index pypi')
    elif option not in (None, 'auto'):
        ok, why = probe_index(option)
        source = TorchSource('cpu', option, 'the index named with --torch-index') if ok else \
            TorchSource('pypi-cuda' if wants_cpu_wheels(where) else 'pypi', None,
                        '--torch-index %s is unreachable (%s)' % (option, why))
    elif env.get('PIP_INDEX_URL') or env.get('PIP_EXTRA_INDEX_URL'):
        source = TorchSource('user', None, 'PIP_INDEX_URL / PIP_EXTRA_INDEX_URL are set')
    elif not wants_cpu_wheels(where):
        source = TorchSource('pypi', None, "PyPI's torch for this platform has no CUDA inside")
    elif gpu if gpu is not None else has_nvidia_gpu(where):
        source = TorchSource('pypi-cuda', None, 'this machine has an NVIDIA GPU')
    else:
        ok, why = probe_index(CPU_INDEX)
        source = TorchSource('cpu', CPU_INDEX, 'no NVIDIA GPU here') if ok else \
            TorchSource('pypi-cuda', None, "PyTorch's CPU-only index %s is unreachable (%s)"
                        % (CPU_INDEX, why))
    where_from = ('%s (CPU-only wheels)' % source.index) if source.index else \
        'your pip configuration' if source.name == 'user' else 'PyPI'
    act.out('torch: from %s, because %s: %s.' % (where_from, source.why, COSTS[source.name]))
    return source


SYSTEM_TORCH = r"""
import os, re, time
import torch
x = torch.ones(256, 256)
(x @ x).sum()                       # loads the BLAS library torch calls for float32 products
blas = ''
try:
    with open('/proc/self/maps') as f:
        names = [line.split()[-1] for line in f if '/' in line]
    blas = next((n for n in names if re.search(r'lib(open)?blas|blis|atlas|mkl_rt', n)), '')
except OSError:
    pass
answer = {'version': torch.__version__, 'config': torch.__config__.show(), 'blas': blas,
          'mkldnn': torch.backends.mkldnn.is_available(), 'cuda': torch.cuda.is_available()}
"""


def system_torch_notes(python):
    """What the torch a venv sees from the system costs, in lines to print (or none)."""
    try:
        facts = ask(python, SYSTEM_TORCH)
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return []
    lines = ['torch: the system\'s %s (no download).' % facts['version']]
    reference = 'BLAS_INFO=generic' in facts['config'] and \
        re.search(r'/blas/libblas\.so', facts['blas'] or '')
    if reference:
        lines.append(
            'note: this torch calls the reference BLAS (%s, the fallback Debian installs when '
            'recommends are off): float32 matrix products run about 15x slower than with '
            'OpenBLAS (Quality in float32, used on CPUs without AVX-512 BF16, takes about '
            '2.5x as long; Fast about 1.3x). Fix: sudo apt install libopenblas0-pthread '
            '(Debian/Ubuntu), then restart GIMP.' % facts['blas'])
    if not facts['mkldnn']:
        lines.append('note: this torch has no oneDNN (mkldnn): convolutions on the CPU run '
                     "several times slower than with PyPI's torch; consider a venv without "
                     '--system-site-packages.')
    return lines


def install_packages(python, venv, base, system_site, want_convert, act, where=None,
                     torch_index=None):
    """pip-install nst_core from this checkout (and the weight converters) into the venv;
    torch first, from the source choose_torch_source picks. Returns a line saying which torch
    the worker got."""
    pip = [python, '-m', 'pip', 'install', '--disable-pip-version-check']
    # Before the venv exists (dry run), the base interpreter sees what the venv will see.
    sees = python if python.exists() else Path(base['executable'])
    missing = missing_modules(sees, CORE_MODULES) if system_site else CORE_MODULES
    if not missing:
        # The system's torch suffices; --no-deps stops pip replacing it (a pip constraint or a
        # newer release on the index would otherwise pull in a second torch).
        act.out('torch, torchvision, PIL and numpy already import in the venv: installing '
                'nst_core without dependencies.')
        notes = system_torch_notes(sees)
        for line in notes:
            act.out(line)
        offline = local_build_flags(sees)
        with staged_checkout(act) as source:
            run_pip(act, pip + ['--no-deps'] + offline + [source], 'pip install nst_core', venv)
        extra = missing_modules(sees, CONVERT_MODULES) if want_convert else []
        if extra:
            run_pip(act, pip + extra, 'pip install %s' % ' '.join(extra), venv)
        return notes[0] if notes else "torch: the system's"
    if system_site:
        act.out('Not importable from the system Python: %s; pip installs nst_core with its '
                'dependencies.' % ', '.join(missing))
    used = 'torch: already in the venv (kept)'
    if missing_modules(sees, ['torch']) or not python.exists():
        chosen = choose_torch_source(torch_index, where or this_machine(), act)
        used = 'torch: from %s' % {
            'cpu': "PyTorch's CPU-only index %s" % chosen.index,
            'pypi-cuda': 'PyPI (the CUDA build, about 5.5 GB)', 'pypi': 'PyPI',
            'user': 'your pip configuration'}[chosen.name]
        check_room(chosen.name, venv, act)
        if chosen.index:
            try:
                run_pip(act, pip + list(TORCH_PACKAGES) + ['--index-url', chosen.index],
                        'pip install torch (CPU-only)', venv)
            except DiskFull:
                raise                    # PyPI's larger torch would not fit either
            except InstallError as e:
                act.out('warning: installing torch from %s failed; falling back to PyPI (%s).'
                        '\n%s' % (chosen.index, COSTS['pypi-cuda'], str(e).splitlines()[0]))
                used = 'torch: from PyPI (the CPU-only index failed)'
                check_room('pypi-cuda', venv, act)
    with staged_checkout(act) as source:
        target = '%s[convert]' % source if want_convert else str(source)
        run_pip(act, pip + [target], 'pip install nst_core', venv)
    return used


def local_build_flags(python):
    """['--no-build-isolation'] when `python` can build nst_core's wheel by itself.

    Then the system-packages route needs no package index at all (offline machines, CI);
    otherwise pip fetches setuptools into an isolated build environment.
    """
    code = ('import importlib.metadata as md\n'
            'def v(name):\n'
            '    try:\n'
            '        return [int(x) for x in md.version(name).split(".")[:2]]\n'
            '    except Exception:\n'
            '        return None\n'
            'answer = [v("setuptools"), v("wheel")]')
    try:
        setuptools, wheel = ask(python, code)
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return []
    # setuptools >= 61 reads setup.cfg + pyproject.toml; bdist_wheel is built in from 70.1.
    can = setuptools is not None and setuptools >= [61, 0] and (setuptools >= [70, 1] or wheel)
    return ['--no-build-isolation'] if can else []


@contextlib.contextmanager
def staged_checkout(act):
    """A clean copy of the package part of this checkout for pip to build from.

    pip builds a local folder in place: that would leave build/ and *.egg-info in the checkout,
    and setuptools' build/lib keeps modules deleted since, which then slip into the wheel.
    """
    if act.dry_run:
        yield CHECKOUT
        return
    with tempfile.TemporaryDirectory(prefix='neural-style-build-') as tmp:
        stage = Path(tmp) / 'src'
        stage.mkdir()
        for item in CHECKOUT.iterdir():
            if item.is_file():
                shutil.copy2(item, stage / item.name)
        shutil.copytree(CHECKOUT / 'nst_core', stage / 'nst_core',
                        ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
        yield stage


def nst_core_cache_dir(python):
    """nst_core's own default weights folder, asked from the venv (one source of truth)."""
    code = 'from nst_core.weights.cache import default_cache_dir\nanswer = str(default_cache_dir())'
    try:
        found = Path(ask(python, code))
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None
    return found if found.is_absolute() else None


def weights_dir(args, python, act):
    if args.weights_dir:
        return Path(args.weights_dir).expanduser().absolute()
    found = nst_core_cache_dir(python)
    if found is None and not act.dry_run:
        raise InstallError('Cannot ask nst_core in %s for its weights folder (is nst_core '
                           'installed there?). Run without --plugin-only, or pass '
                           '--weights-dir.' % python)
    return found


def fetch_weights(python, cache_dir, act):
    """`nst_core weights fetch` (VGG-19, else the PyPI VGG-16; the Fast weights), then verify."""
    for verb in ('fetch', 'verify'):
        act.run([python, '-m', 'nst_core', 'weights', verb, '--cache-dir', cache_dir],
                'Weights %s' % verb,
                'The plug-in is installed but cannot stylize until the weights are there. When '
                'the network allows, run:\n    %s -m nst_core weights fetch --cache-dir %s'
                % (python, cache_dir), cwd=tempfile.gettempdir())


# ---------------------------------------------------------------- the GIMP side

def plugin_source(checkout=CHECKOUT):
    """Files to copy: plugin/neural_style/ (its help pages in help/ too; no caches), the
    protocol and the worker client, as relative path ('help/en/index.html') -> source path."""
    folder, protocol = checkout / 'plugin' / PLUGIN, checkout / PROTOCOL_COPY
    client = checkout / CLIENT_COPY
    main = folder / (PLUGIN + '.py')
    for needed in (main, protocol, client):
        if not needed.is_file():
            raise InstallError('%s is missing: this checkout is incomplete. Get a complete copy '
                               'of the project and run its install.py.' % needed)
    files = {}
    for p in sorted(folder.rglob('*')):
        rel = p.relative_to(folder)
        if p.is_file() and '__pycache__' not in rel.parts \
                and p.suffix not in ('.pyc', '.part') and rel.as_posix() != CONFIG_NAME:
            files[rel.as_posix()] = p
    files[PROTOCOL_COPY] = protocol
    files[CLIENT_COPY] = client
    return files


def make_config(python, cache_dir, device):
    return dict({'version': CONFIG_VERSION, 'python': str(python), 'cache_dir': str(cache_dir),
                 'device': device, 'model': 'auto'}, **nst_protocol.TIME_LIMITS)


def kept_time_limits(config, old):
    """config with the time limits the user set in the config it replaces (old)."""
    config = dict(config)
    for key in nst_protocol.TIME_LIMITS:
        value = old.get(key) if isinstance(old, dict) else None
        if nst_protocol.is_seconds(value):
            config[key] = value
    return config


def is_our_plugin_folder(folder):
    return (folder / (PLUGIN + '.py')).is_file() or (folder / CONFIG_NAME).is_file()


def install_plugin(files, plugins_dir, config, act):
    """Copy the plug-in into <plug-ins>/neural_style/ (run bit set) and write its config."""
    target = plugins_dir / PLUGIN
    if target.exists() and any(target.iterdir()) and not is_our_plugin_folder(target):
        raise InstallError('%s exists and does not hold this plug-in; move it away first.'
                           % target)
    act.mkdir(target)
    for name, source in files.items():
        act.mkdir((target / name).parent)
        act.write(target / name, source.read_bytes(), executable=(name == PLUGIN + '.py'))
    tops = {name.split('/')[0] for name in files} | {CONFIG_NAME}
    stale = [p for p in target.iterdir() if p.name not in tops] if target.is_dir() else []
    for top in sorted({name.split('/')[0] for name in files if '/' in name}):
        if (target / top).is_dir():
            stale += [p for p in sorted((target / top).rglob('*'))
                      if p.is_file() and p.relative_to(target).as_posix() not in files]
    for old in stale:           # left by an older version of the plug-in
        act.say('remove %s' % old)
        if not act.dry_run:
            shutil.rmtree(old) if old.is_dir() else old.unlink()
    config = kept_time_limits(config, read_config(target))
    act.write(target / CONFIG_NAME, (json.dumps(config, indent=2) + '\n').encode(),
              show=act.dry_run)
    return target


def read_config(folder):
    try:
        return json.loads((folder / CONFIG_NAME).read_text())
    except (OSError, ValueError):
        return {}


# ---------------------------------------------------------------- a worker on another computer

# What --remote [user@]host looks for there when no interpreter is named: --worker-only's
# default venv of a Linux, then of a macOS box, relative to the remote home.
REMOTE_PYTHONS = tuple(venv_python(default_venv(Where(s, {}, PurePosixPath())), s).as_posix()
                       for s in ('linux', 'darwin'))
SSH_SECONDS = 180       # ssh's connect (ConnectTimeout 15 s), then torch's import over there
# Run by the remote's login shell through `sh -c` (so a fish or csh login shell does not
# matter): the first of the default interpreters there, as an absolute path.
FIND_PYTHON = 'for p in "$@"; do if [ -x "$HOME/$p" ]; then printf "%s\\n" "$HOME/$p"; ' \
              'exit 0; fi; done; exit 127'


def remote_option(text):
    """(URL or None, 'ssh://[user@]host[:port]') from --remote: an ssh:// URL naming the
    interpreter there, or [user@]host[:port] (or an ssh:// URL without a path) for the default
    place of --worker-only's engine."""
    whole = text if text.startswith('ssh://') else 'ssh://' + text
    parts = urlsplit(whole)
    url = whole if parts.path not in ('', '/') else None
    base = '%s://%s' % (parts.scheme, parts.netloc)
    try:
        if '://' in whole[len('ssh://'):]:
            raise nst_client.Failure('remote_url', url=text)     # another scheme than ssh
        nst_client.RemoteSpec(url or base + '/python')    # checks host, port and the rest
    except nst_client.Failure:
        raise InstallError('--remote %s: expected [user@]host[:port], or '
                           'ssh://[user@]host[:port]/path/to/python naming the engine\'s '
                           'interpreter there.' % text)
    return url, base


def ssh_line(argv):
    return ' '.join(shlex.quote(str(a)) for a in argv)


def run_ssh(argv, spec):
    """ssh's result (stdout and stderr as bytes), or InstallError in one clear line when ssh
    itself could not run or log in (exit code 255). BatchMode (nst_client.SSH_OPTIONS): never a
    password prompt, which the plug-in in GIMP could not answer either."""
    try:
        out = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, timeout=SSH_SECONDS)
    except OSError as e:
        raise InstallError('Cannot run %s (%s). Install an OpenSSH client (Debian/Ubuntu: sudo '
                           'apt install openssh-client; Windows 10+ and macOS have one) or name '
                           'yours with --ssh-command.' % (argv[0], e.strerror or e))
    except subprocess.TimeoutExpired:
        raise InstallError('%s did not answer within %d s over ssh: %s' % (
            spec.label, SSH_SECONDS, ssh_line(argv)))
    if out.returncode == 255:
        raise InstallError(ssh_refusal(spec, last_line(out.stderr)))
    return out


def last_line(data):
    lines = [ln.strip() for ln in data.decode('utf-8', 'replace').splitlines() if ln.strip()]
    return lines[-1] if lines else ''


def ssh_refusal(spec, said):
    """ssh's own reason, and what to do about the usual ones."""
    login = ' '.join(spec.login())
    by_hand = 'ssh ' + login
    refusal = nst_client.ssh_refusal(said)
    if refusal == 'no_key':
        advice = ('Set up key login (the plug-in cannot type a password): ssh-keygen -t '
                  'ed25519 (once), then ssh-copy-id %s; check it with: %s true.' % (
                      login, by_hand))
    elif refusal in ('host_key_unknown', 'host_key_changed'):
        advice = ("ssh does not know this computer's host key for %s, or it changed: log in "
                  'once by hand (%s) to check and accept it.' % (spec.host, by_hand))
    else:
        advice = 'Check that %s works in a terminal.' % by_hand
    return 'ssh could not log in to %s: %s\n%s\nThen run this again.' % (
        spec.label, said or 'no reason given (exit code 255)', advice)


def find_remote_python(base, ssh_command, act):
    """The absolute path of --worker-only's engine on the remote (its default venv)."""
    spec = nst_client.RemoteSpec(base + '/python')
    argv = spec.argv({'ssh_command': ssh_command})[:-1] + [ssh_line(
        ['sh', '-c', FIND_PYTHON, 'sh'] + list(REMOTE_PYTHONS))]   # [..., host, command]
    act.out('Looking for the engine on %s over ssh: %s' % (spec.label, ssh_line(argv)))
    found = run_ssh(argv, spec).stdout.decode('utf-8', 'replace').strip().splitlines()
    if not found or not found[-1].startswith('/'):
        raise InstallError(
            '%s has no Neural Style engine in its usual place (~/%s). On %s, in a Neural Style '
            'folder of the same version as this one (%s), run:\n    %s\nthen run this again '
            '(or name the engine\'s interpreter: --remote %s/path/to/python).' % (
                spec.label, ' or ~/'.join(REMOTE_PYTHONS), spec.host,
                nst_protocol.ENGINE_VERSION, nst_protocol.WORKER_ONLY, base))
    return base + quote(found[-1])


def read_hello(stdout):
    """(hello, lines printed before it) from the output of `nst_core remote --probe`."""
    lines = stdout.decode('utf-8', 'replace').splitlines()
    for i, line in enumerate(lines):
        try:
            return nst_protocol.parse_hello(line), lines[:i]
        except ValueError:
            continue
    return None, lines


def describe_devices(hello):
    """'NVIDIA H200 (cuda:0), x86_64 (cpu)'"""
    return ', '.join('%s (%s)' % (d.get('label'), d.get('name'))
                     if d.get('label') and d.get('label') != d.get('name') else
                     str(d.get('name')) for d in hello.get('devices') or [])


def best_device(hello):
    """The label of the device Auto picks there: its first accelerator, else its CPU."""
    devices = hello.get('devices') or []
    gpus = [d for d in devices if d.get('name') != 'cpu']
    return str((gpus or [{'label': 'CPU'}])[0].get('label') or gpus[0].get('name'))


def probe_remote(url, ssh_command, act):
    """Ask the remote engine for its hello over ssh, as the plug-in will (nst_client's very
    command); (RemoteSpec, hello), or InstallError saying what to run there."""
    spec = nst_client.RemoteSpec(url)
    argv = spec.argv({'ssh_command': ssh_command}, 'remote', '--probe')
    act.out('Asking %s for its engine over ssh: %s' % (spec.label, ssh_line(argv)))
    out = run_ssh(argv, spec)
    hello, before = read_hello(out.stdout)
    here = nst_protocol.ENGINE_VERSION
    if hello is None:
        said = last_line(out.stderr) or last_line(out.stdout) or 'exit code %d' % out.returncode
        raise InstallError(
            'No Neural Style engine answered on %s: %s -m nst_core remote said: %s\nOn %s, in '
            'a Neural Style folder of the same version as this one (%s), run:\n    %s\nthen '
            'run this again.' % (spec.label, spec.python, said, spec.host, here,
                                 nst_protocol.WORKER_ONLY))
    if hello.get('version') != here or hello.get('protocol') != nst_protocol.PROTOCOL_VERSION:
        raise InstallError(
            '%s has nst_core %s, this folder is %s: they must be the same release. On %s, '
            'update its Neural Style folder to %s (e.g. git pull) and run there:\n    %s\nthen '
            'run this again.' % (spec.label, hello.get('version'), here, spec.host, here,
                                 nst_protocol.WORKER_ONLY))
    if before:
        act.out("warning: %s's shell printed %d line(s) before the engine's answer (%r...): "
                'jobs may fail to start. Make its start-up files (e.g. ~/.bashrc) print '
                'nothing when not interactive.' % (spec.host, len(before), before[0][:80]))
    return spec, hello


def make_remote_config(url, label, ssh_command, device):
    """The plug-in's config for a worker over ssh: no local interpreter or weights (the
    remote uses its own); "remote_label" is what the dialog says the work runs on."""
    config = dict({'version': CONFIG_VERSION, 'remote': url, 'remote_label': label,
                   'device': device, 'model': 'auto'}, **nst_protocol.TIME_LIMITS)
    if ssh_command:
        config['ssh_command'] = list(ssh_command)
    return config


def install_remote(args, where, act):
    """--remote: probe the engine on the other computer and point the plug-in at it."""
    targets = choose_plugin_dirs(args, where)
    files = plugin_source()
    ssh_command = shlex.split(args.ssh_command) if args.ssh_command else None
    url, base = remote_option(args.remote)
    url = url or find_remote_python(base, ssh_command, act)
    spec, hello = probe_remote(url, ssh_command, act)
    host = hello.get('host')
    act.out('Found %s%s: nst_core %s, %s' % (
        spec.label, ' (%s)' % host if host and host != spec.host else '', hello['version'],
        describe_devices(hello)))
    kinds = {str(d.get('name')).split(':')[0] for d in hello.get('devices') or []}
    if args.device != 'auto' and kinds and args.device not in kinds:
        act.out('warning: --device %s: %s has no such device; jobs asking for it will fail '
                'there.' % (args.device, spec.label))
    label = '%s: %s' % (spec.host, best_device(hello))
    config = make_remote_config(url, label, ssh_command, args.device)
    installed = []
    for plugins_dir, _ in targets:
        act.mkdir(plugins_dir)
        installed.append(install_plugin(files, plugins_dir, config, act))
    report_install(installed, targets, None, None, args, where, act,
                   runs_on='%s (%s)' % (label, url), devices=describe_devices(hello))


def local_hello(python):
    """The engine's own probe on this computer (`nst_core remote --probe`, as ssh will run
    it from another): (hello, what went wrong)."""
    try:
        out = subprocess.run([str(python), '-m', 'nst_core', 'remote', '--probe'],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, timeout=SSH_SECONDS,
                             cwd=tempfile.gettempdir())
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, str(e)
    hello, _ = read_hello(out.stdout)
    return hello, last_line(out.stderr) or 'exit code %d' % out.returncode


def worker_address(python, where):
    """(the short --remote argument, or None where it would not find this engine; the full
    ssh:// URL) that another computer names this worker by."""
    login = '%s@%s' % (getpass.getuser(), socket.gethostname())
    url = 'ssh://%s%s' % (login, quote(Path(python).as_posix()))
    usual = {str(where.home / p) for p in REMOTE_PYTHONS}
    return (login if str(python) in usual else None), url


def report_worker(python, cache_dir, args, where, act, torch_line=None):
    """--worker-only's summary: what the other computer is to run to use this engine."""
    lines = ['', 'Dry run: nothing was changed. The steps above show what would happen.'
             if act.dry_run else "Neural Style's engine is installed (worker only: no GIMP "
                                 'plug-in on this computer).',
             '  worker Python:  %s' % python,
             '  weights:        %s%s' % (cache_dir, ' (not fetched: --skip-weights)'
                                         if args.skip_weights else '')]
    if torch_line:
        lines.append('  %s' % torch_line.replace('torch: ', 'torch:          ', 1))
    if not act.dry_run:
        hello, why = local_hello(python)
        if hello is None:
            raise InstallError('The engine does not answer as it must over ssh: %s -m nst_core '
                               'remote --probe said: %s' % (python, why))
        lines.append('  devices:        %s' % describe_devices(hello))
    short, url = worker_address(python, where)
    lines += ['', 'On the computer where GIMP runs, in its Neural Style folder (of this same '
                  'version, %s), run:' % nst_protocol.ENGINE_VERSION]
    if short:
        lines += ['    python3 install.py --remote %s' % short,
                  'or, naming this engine in full:']
    lines += ['    python3 install.py --remote %s' % url,
              '(%s is this computer\'s name: use its address, or your ssh alias for it, if the '
              'other computer knows it by another). That computer logs in here with ssh and a '
              'key, never a password: see docs/remote.md.' % socket.gethostname(),
              'Remove it again with: ' + uninstall_command(args, where)]
    act.out('\n'.join(lines))


# ---------------------------------------------------------------- the two commands

def install(args, where, act):
    if args.remote:
        return install_remote(args, where, act)
    targets, files = [], None
    if not args.worker_only:            # the GPU box of a worker over ssh needs no GIMP
        try:
            targets = choose_plugin_dirs(args, where)  # first: no installing torch for nothing
        except InstallError as e:
            if not args.demo:
                raise
            act.out('warning: %s\nContinuing without the plug-in (--demo).' % e)
        files = plugin_source()
    base = probe(args.python)
    check_python_version(base['version'], 'The interpreter %s' % base['executable'])
    venv = Path(args.venv).expanduser().absolute() if args.venv else default_venv(where)
    torch_line = None
    if args.plugin_only:
        python = venv_python(venv, where.system)
        option = '--local' if args.local else '--plugin-only'
        if not python.exists():
            raise InstallError('%s needs an existing venv, but %s does not exist. Run without '
                               '%s.' % (option, python, option))
    else:
        python = ensure_venv(venv, base, args.system_site_packages, where.system, act)
        if args.system_site_packages and base['in_venv']:
            inherit_parent_site(python, base, act)
        torch_line = install_packages(python, venv, base, args.system_site_packages,
                                      not args.skip_weights, act, where, args.torch_index)
    cache_dir = weights_dir(args, python, act) or "(nst_core's default weights folder)"
    config = make_config(python, cache_dir, args.device)
    installed = []
    for plugins_dir, profile in targets:
        act.mkdir(plugins_dir)
        installed.append(install_plugin(files, plugins_dir, config, act))
    if not args.skip_weights and not args.plugin_only:
        fetch_weights(python, cache_dir, act)
    if args.worker_only:
        report_worker(python, cache_dir, args, where, act, torch_line)
    else:
        report_install(installed, targets, python, cache_dir, args, where, act, torch_line)
    if args.demo:
        run_demo(python, cache_dir, act)


def run_demo(python, cache_dir, act):
    """Stylise a sample photo from a shell: proves the worker side works without GIMP."""
    out = Path.cwd() / 'neural_style_demo.png'
    samples = CHECKOUT / 'samples'
    act.run([str(python), '-m', 'nst_core', 'stylize', str(samples / 'chelsea.jpg'),
             str(samples / 'starry_night.jpg'), '-o', str(out), '--cache-dir', str(cache_dir)],
            'demo: stylising samples/chelsea.jpg with samples/starry_night.jpg (about a '
            'minute on 2 CPU cores)', 'the engine failed; its message is above.')
    act.out('demo: %s %s' % ('would write' if act.dry_run else 'wrote', out))


def report_install(installed, targets, python, cache_dir, args, where, act, torch_line=None,
                   runs_on='this computer', devices=None):
    """The summary; python and cache_dir are None for a worker on another computer (runs_on,
    with its devices)."""
    head = 'Dry run: nothing was changed. The steps above show what would happen.' \
        if act.dry_run else 'Neural Style is installed.'
    lines = ['', head, '  runs on:        %s' % runs_on]
    if python is not None:
        lines += ['  worker Python:  %s' % python,
                  '  weights:        %s%s' % (cache_dir, ' (not fetched: --skip-weights)'
                                             if args.skip_weights else '')]
    lines.append('  default device: %s%s' % (args.device, " (of the remote's: %s)" % devices
                                              if devices else ''))
    if torch_line:
        lines.append('  %s' % torch_line.replace('torch: ', 'torch:          ', 1))
    lines += ['  plug-in:        %s (config %s)' % (d, CONFIG_NAME) for d in installed]
    warnings = [sandbox_warning(p, where) for _, p in targets if p is not None]
    lines += ['warning: ' + w for w in warnings if w]
    if not targets:
        lines += ['  plug-in:        not installed (no GIMP 3 profile; run again after '
                  'starting GIMP 3 once)']
    lines += ['',
              'Restart GIMP 3 (it loads plug-ins at start-up). Open a photo, add the painting '
              'as a second layer (or open it as another image), select the photo layer and '
              'choose %s' % MENU]
    if devices:
        lines.append('To run the work on this computer again: python3 install.py (or --local '
                     'to reuse its venv as it is).')
    lines.append('Remove it again with: ' + uninstall_command(args, where))
    act.out('\n'.join(lines))


def uninstall_command(args, where):
    words = ['python' if where.system == 'win32' else 'python3', str(CHECKOUT / 'install.py'),
             '--uninstall']
    words += ['--venv', args.venv] if args.venv else []
    for d in args.gimp_plugins_dir or []:
        words += ['--gimp-plugins-dir', d]
    return ' '.join('"%s"' % w if ' ' in w else w for w in words)


def installed_plugin_folders(args, where):
    if args.gimp_plugins_dir:
        candidates = [plugin_dir_from_option(d) / PLUGIN for d in args.gimp_plugins_dir]
    else:
        candidates = [p.path / 'plug-ins' / PLUGIN for p in find_gimp_profiles(where)
                      if is_gimp3(p)]
    return [c for c in candidates if c.is_dir() and is_our_plugin_folder(c)]


def venv_of(python):
    return Path(python).parent.parent       # <venv>/bin/python, <venv>\Scripts\python.exe


def safe_to_purge(folder, where):
    """Never delete a home folder, a filesystem root, or anything containing the home."""
    folder = Path(os.path.realpath(folder))
    home = Path(os.path.realpath(where.home))
    return folder != Path(folder.anchor) and not (home == folder or folder in home.parents)


def uninstall(args, where, act):
    folders = installed_plugin_folders(args, where)
    configs = [read_config(f) for f in folders]
    venvs = [Path(args.venv).expanduser().absolute() if args.venv else default_venv(where)]
    venvs += [venv_of(c['python']) for c in configs if c.get('python')]
    caches = [Path(args.weights_dir).expanduser().absolute()] if args.weights_dir else []
    caches += [Path(c['cache_dir']) for c in configs if c.get('cache_dir')]
    if args.purge_weights and not caches:
        default = nst_core_cache_dir(venv_python(venvs[0], where.system))
        caches += [default] if default else []
    for folder in folders:
        act.remove_tree(folder)
    for venv in unique(venvs):
        if venv_created_here(venv):
            act.remove_tree(venv)
            if venv == default_venv(where) and not act.dry_run and not any(venv.parent.iterdir()):
                venv.parent.rmdir()         # the empty neural-style data folder
        elif venv.exists():
            act.out('Keeping %s: install.py did not create it.' % venv)
    for cache in unique(caches) if args.purge_weights else []:
        if not cache.is_dir():
            continue
        if (cache / 'manifest.json').is_file() and safe_to_purge(cache, where):
            act.remove_tree(cache)
        else:
            act.out('Keeping %s: it does not look like an nst_core weights folder only.' % cache)
    kept = [c for c in unique(caches) if c.is_dir()] if not args.purge_weights else []
    act.out('\n' + ('Dry run: nothing was changed.' if act.dry_run else
                    'Neural Style is uninstalled.' if folders else
                    'No installed Neural Style plug-in found in the GIMP 3 profiles.'))
    for cache in kept:
        act.out('The weights in %s were kept (--purge-weights removes them).' % cache)


def unique(paths):
    seen, out = set(), []
    for p in paths:
        if os.path.realpath(p) not in seen:
            seen.add(os.path.realpath(p))
            out.append(p)
    return out


# ---------------------------------------------------------------- command line

def parse_args(argv):
    p = argparse.ArgumentParser(
        description='Install the Neural Style plug-in for GIMP 3 with its worker environment.',
        epilog='Details and troubleshooting: docs/install.md')
    p.add_argument('--venv', metavar='PATH',
                   help='venv for the worker (default: %s)' % default_venv(this_machine()))
    p.add_argument('--python', metavar='PATH', default=sys.executable,
                   help='interpreter the venv is created from (default: this one)')
    p.add_argument('--system-site-packages', action='store_true',
                   help="let the venv see the interpreter's packages (e.g. Debian's python3-torch)"
                        '; nst_core is then installed without dependencies if torch, '
                        'torchvision, PIL and numpy already import')
    p.add_argument('--torch-index', metavar='URL|auto|pypi', default='auto',
                   help="where pip gets torch (default auto: PyTorch's CPU-only index %s on a "
                        'Linux x86-64 machine without an NVIDIA GPU when it is reachable, else '
                        'PyPI; your PIP_INDEX_URL / PIP_EXTRA_INDEX_URL win)' % CPU_INDEX)
    p.add_argument('--weights-dir', metavar='DIR',
                   help="weights folder (default: nst_core's cache folder)")
    p.add_argument('--skip-weights', action='store_true',
                   help='do not fetch the weights now (offline setups)')
    p.add_argument('--gimp-plugins-dir', metavar='DIR', action='append',
                   help='plug-ins folder to install into instead of every GIMP 3 profile found '
                        '(repeatable)')
    p.add_argument('--device', choices=DEVICES, default='auto',
                   help="the plug-in's default device (default: auto)")
    p.add_argument('--plugin-only', action='store_true',
                   help='only copy the plug-in and write its config, reusing the existing venv '
                        'as it is (e.g. after installing another GIMP version)')
    p.add_argument('--worker-only', action='store_true',
                   help='install the engine alone (venv, nst_core, weights), no GIMP needed: '
                        'on a GPU box that the computer with GIMP uses over ssh; it prints the '
                        '--remote argument to use there (docs/remote.md)')
    p.add_argument('--remote', metavar='[USER@]HOST[:PORT]',
                   help='run the work on another computer over ssh, where --worker-only '
                        'installed the engine (or name its interpreter: ssh://[USER@]HOST'
                        '[:PORT]/path/to/python): probes it, then installs the plug-in here '
                        'pointing at it (no torch needed here). Back to this computer: '
                        "--local (or --remote ''), or a normal install")
    p.add_argument('--ssh-command', metavar='COMMAND',
                   help='with --remote: the ssh to run, with its options, e.g. "ssh -F '
                        'FILE" (default: ssh)')
    p.add_argument('--local', action='store_true',
                   help='run the work on this computer again: as --plugin-only, which writes '
                        'a config without the remote')
    p.add_argument('--demo', action='store_true',
                   help='afterwards, stylise a sample photo into ./neural_style_demo.png '
                   '(also works where GIMP 3 is not installed: the plug-in step is skipped)')
    p.add_argument('--dry-run', action='store_true', help='print every step, change nothing')
    p.add_argument('--uninstall', action='store_true',
                   help='remove the plug-in folders and the venv this script created')
    p.add_argument('--purge-weights', action='store_true',
                   help='with --uninstall: also remove the weights folder')
    args = p.parse_args(argv)
    if args.purge_weights and not args.uninstall:
        p.error('--purge-weights only goes with --uninstall')
    if args.remote == '':
        args.remote, args.local = None, True
    if args.local:
        args.plugin_only = True         # the config written without "remote"
    given = [name for name, on in (('--remote', args.remote), ('--local', args.local),
                                   ('--plugin-only', args.plugin_only and not args.local),
                                   ('--gimp-plugins-dir', args.gimp_plugins_dir),
                                   ('--uninstall', args.uninstall)) if on]
    if args.worker_only and given:
        p.error('--worker-only installs no plug-in: it does not go with %s' % given[0])
    if args.remote and (args.local or args.plugin_only or args.demo or args.uninstall):
        p.error('--remote does not go with --local, --plugin-only, --demo or --uninstall')
    if args.ssh_command and not args.remote:
        p.error('--ssh-command only goes with --remote')
    return args


def main(argv=None, where=None):
    args = parse_args(argv)
    act = Actions(args.dry_run)
    try:
        (uninstall if args.uninstall else install)(args, where or this_machine(), act)
    except InstallError as e:
        print('error: %s' % e, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print('\ninterrupted: run install.py again to finish (it reuses what is done).',
              file=sys.stderr)
        return 130
    return 0


if __name__ == '__main__':
    sys.exit(main())
