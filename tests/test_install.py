"""install.py: GIMP profile detection per OS, plug-in copy + config, dry run, idempotence,
uninstall, and the errors a user can meet. One slow test does a real install into a venv."""
import hashlib
import importlib.util
import json
import os
import shlex
import shutil
import stat
import subprocess
import tempfile
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load_install():
    spec = importlib.util.spec_from_file_location('nst_install', ROOT / 'install.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


inst = _load_install()


# ---------------------------------------------------------------- fixtures

@pytest.fixture
def checkout(tmp_path):
    """A copy of this checkout's installable parts, with a stand-in plug-in (the real one is
    not install.py's business and may not exist yet)."""
    co = tmp_path / 'checkout'
    co.mkdir()
    for name in ('install.py', 'nst_protocol.py', 'nst_client.py', 'setup.cfg', 'setup.py', 'pyproject.toml',
                 'README.md'):
        if (ROOT / name).is_file():
            shutil.copy2(ROOT / name, co / name)
    shutil.copytree(ROOT / 'nst_core', co / 'nst_core',
                    ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
    plugin = co / 'plugin' / 'neural_style'
    (plugin / '__pycache__').mkdir(parents=True)
    (plugin / 'neural_style.py').write_text('#!/usr/bin/env python3\n# stand-in plug-in\n')
    (plugin / 'dialog_help.py').write_text('HELP = "stand-in helper module"\n')
    (plugin / '__pycache__' / 'dialog_help.cpython-311.pyc').write_bytes(b'\0stale')
    (plugin / 'help' / 'en').mkdir(parents=True)              # the help pages GIMP shows
    (plugin / 'help' / 'en' / 'gimp-help.xml').write_text('<gimp-help/>\n')
    (plugin / 'help' / 'en' / 'index.html').write_text('<p>stand-in help</p>\n')
    return co


@pytest.fixture
def home(tmp_path):
    h = tmp_path / 'home'
    h.mkdir()
    return h


@pytest.fixture
def bare_venv(tmp_path):
    """A real venv made in a blink (no pip): enough for --plugin-only and for reuse checks."""
    venv = tmp_path / 'worker-venv'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(venv)], check=True)
    return venv


def user_env(home, **extra):
    """The environment of a user whose home is `home` (no XDG or GIMP overrides of our own)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(('XDG_', 'GIMP')) and k not in ('APPDATA', 'LOCALAPPDATA',
                                                                 'NST_CORE_CACHE', 'FLATPAK_ID')}
    env.update(HOME=str(home), USERPROFILE=str(home), PYTHONDONTWRITEBYTECODE='1')
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_install(checkout, *args, env, timeout=600):
    return subprocess.run([sys.executable, str(checkout / 'install.py')] + [str(a) for a in args],
                          env=env, capture_output=True, text=True, timeout=timeout,
                          cwd=str(checkout))


def make_profiles(home, *versions, root='.config/GIMP'):
    for v in versions:
        (home / root / v).mkdir(parents=True)
    return [home / root / v for v in versions]


def tree_state(*roots):
    """Everything that could change: paths, types, modes, sizes, mtimes, contents."""
    state = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                p = Path(dirpath, name)
                st = p.lstat()
                digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None
                state[str(p)] = (stat.S_IFMT(st.st_mode), st.st_mode, st.st_size,
                                 st.st_mtime_ns, digest)
    return state


# ---------------------------------------------------------------- where GIMP 3 keeps plug-ins

@pytest.mark.parametrize('system, env, profile_dir', [
    ('linux', {}, '.config/GIMP/3.0'),
    ('linux', {}, '.config/GIMP/3.2'),
    ('linux', {'XDG_CONFIG_HOME': 'xdg-config'}, 'xdg-config/GIMP/3.0'),
    ('linux', {}, '.var/app/org.gimp.GIMP/config/GIMP/3.0'),
    ('linux', {}, 'snap/gimp/current/.config/GIMP/3.0'),
    ('win32', {'APPDATA': 'AppData/Roaming'}, 'AppData/Roaming/GIMP/3.0'),
    ('win32', {}, 'AppData/Roaming/GIMP/3.2'),              # %APPDATA% unset: its usual place
    ('darwin', {}, 'Library/Application Support/GIMP/3.0'),
    ('darwin', {}, 'Library/Application Support/GIMP/3.2'),
])
def test_finds_the_gimp3_profile_of_each_platform(home, system, env, profile_dir):
    (home / profile_dir).mkdir(parents=True)
    where = inst.Where(system, {k: str(home / v) for k, v in env.items()}, home)
    profiles = inst.find_gimp_profiles(where)
    assert [p.path for p in profiles] == [home / profile_dir]
    assert inst.is_gimp3(profiles[0])


@pytest.mark.parametrize('system, other_place', [
    ('linux', 'Library/Application Support/GIMP/3.0'),   # macOS layout on Linux: not looked at
    ('win32', '.config/GIMP/3.0'),
    ('darwin', 'AppData/Roaming/GIMP/3.0'),
])
def test_ignores_other_platforms_layouts(home, system, other_place):
    (home / other_place).mkdir(parents=True)
    assert inst.find_gimp_profiles(inst.Where(system, {}, home)) == []


def test_xdg_config_home_replaces_dot_config(home):
    make_profiles(home, '3.0')                                   # ~/.config: not used
    (home / 'xdg' / 'GIMP' / '3.2').mkdir(parents=True)
    where = inst.Where('linux', {'XDG_CONFIG_HOME': str(home / 'xdg')}, home)
    assert [p.path for p in inst.find_gimp_profiles(where)] == [home / 'xdg' / 'GIMP' / '3.2']


def test_every_gimp3_profile_newest_first_and_210_is_not_gimp3(home):
    make_profiles(home, '2.10', '3.0', '3.2')
    (home / '.config/GIMP/3.4-backup').mkdir()                  # not a version folder
    (home / '.config/GIMP/3.6').write_text('a file, not a profile')
    (home / '.var/app/org.gimp.GIMP/config/GIMP/3.0').mkdir(parents=True)
    where = inst.Where('linux', {}, home)
    found = inst.find_gimp_profiles(where)
    assert [(p.version, p.kind) for p in found] == [
        ((3, 2), 'native'), ((3, 0), 'native'), ((3, 0), 'flatpak'), ((2, 10), 'native')]
    args = inst.parse_args([])
    assert [d for d, _ in inst.choose_plugin_dirs(args, where)] == [
        home / '.config/GIMP/3.2/plug-ins', home / '.config/GIMP/3.0/plug-ins',
        home / '.var/app/org.gimp.GIMP/config/GIMP/3.0/plug-ins']


@pytest.mark.parametrize('system', ['linux', 'win32', 'darwin'])
def test_gimp3_directory_is_the_only_profile_when_set(home, system):
    make_profiles(home, '3.0')
    custom = home / 'throwaway-profile'
    custom.mkdir()
    where = inst.Where(system, {'GIMP3_DIRECTORY': str(custom), 'APPDATA': str(home)}, home)
    assert [p.path for p in inst.find_gimp_profiles(where)] == [custom]
    missing = inst.Where(system, {'GIMP3_DIRECTORY': str(home / 'nope')}, home)
    with pytest.raises(inst.InstallError, match='GIMP3_DIRECTORY'):
        inst.choose_plugin_dirs(inst.parse_args([]), missing)


def test_sandboxed_profiles_get_a_warning_unless_running_inside_the_sandbox(home):
    flatpak = inst.Profile(home / '.var/app/org.gimp.GIMP/config/GIMP/3.0', (3, 0), 'flatpak')
    snap = inst.Profile(home / 'snap/gimp/current/.config/GIMP/3.0', (3, 0), 'snap')
    native = inst.Profile(home / '.config/GIMP/3.0', (3, 0), 'native')
    outside = inst.Where('linux', {}, home)
    assert 'Flatpak' in inst.sandbox_warning(flatpak, outside)
    assert 'Snap' in inst.sandbox_warning(snap, outside)
    assert inst.sandbox_warning(native, outside) is None
    inside = inst.Where('linux', {'FLATPAK_ID': 'org.gimp.GIMP'}, home)
    assert inst.sandbox_warning(flatpak, inside) is None


@pytest.mark.parametrize('system, env, expected', [
    ('linux', {}, '.local/share/neural-style/venv'),
    ('linux', {'XDG_DATA_HOME': 'data'}, 'data/neural-style/venv'),
    ('darwin', {}, 'Library/Application Support/neural-style/venv'),
    ('win32', {'LOCALAPPDATA': 'Local'}, 'Local/neural-style/venv'),
    ('win32', {}, 'AppData/Local/neural-style/venv'),
])
def test_default_venv_is_in_the_user_data_folder(home, system, env, expected):
    where = inst.Where(system, {k: str(home / v) for k, v in env.items()}, home)
    assert inst.default_venv(where) == home / expected


def test_relative_xdg_values_are_ignored_as_the_spec_says(home):
    where = inst.Where('linux', {'XDG_DATA_HOME': 'relative/data'}, home)
    assert inst.default_venv(where) == home / '.local/share/neural-style/venv'


def test_venv_interpreter_path_per_platform(tmp_path):
    assert inst.venv_python(tmp_path, 'win32') == tmp_path / 'Scripts' / 'python.exe'
    assert inst.venv_python(tmp_path, 'linux') == tmp_path / 'bin' / 'python'
    assert inst.venv_python(tmp_path, 'darwin') == tmp_path / 'bin' / 'python'


def test_a_profile_folder_given_as_plugins_dir_means_its_plug_ins(home):
    profile = make_profiles(home, '3.0')[0]
    (profile / 'gimprc').write_text('')
    assert inst.plugin_dir_from_option(str(profile)) == profile / 'plug-ins'
    assert inst.plugin_dir_from_option(str(profile / 'plug-ins')) == profile / 'plug-ins'
    elsewhere = home / 'my-plugins'
    assert inst.plugin_dir_from_option(str(elsewhere)) == elsewhere


# ---------------------------------------------------------------- install: files and config

def plugin_only(checkout, venv, weights, *more, env):
    return run_install(checkout, '--plugin-only', '--venv', venv, '--weights-dir', weights,
                       *more, env=env)


def test_copies_plugin_with_run_bit_protocol_and_config(checkout, home, bare_venv, tmp_path):
    profiles = make_profiles(home, '3.0', '3.2')
    weights = tmp_path / 'weights'
    r = plugin_only(checkout, bare_venv, weights, '--device', 'cpu', env=user_env(home))
    assert r.returncode == 0, r.stderr
    for profile in profiles:
        target = profile / 'plug-ins' / 'neural_style'
        assert sorted(p.name for p in target.iterdir()) == [
            'dialog_help.py', 'help', 'neural_style.json', 'neural_style.py', 'nst_client.py',
            'nst_protocol.py']
        assert sorted(p.relative_to(target).as_posix() for p in (target / 'help').rglob('*')
                      if p.is_file()) == ['help/en/gimp-help.xml', 'help/en/index.html']
        assert (target / 'help/en/index.html').read_bytes() == \
            (checkout / 'plugin/neural_style/help/en/index.html').read_bytes()
        main = target / 'neural_style.py'
        assert main.read_bytes() == (checkout / 'plugin/neural_style/neural_style.py').read_bytes()
        assert main.stat().st_mode & stat.S_IXUSR
        assert not (target / 'dialog_help.py').stat().st_mode & stat.S_IXUSR
        for shared in ('nst_protocol.py', 'nst_client.py'):
            assert (target / shared).read_bytes() == (ROOT / shared).read_bytes()
        config = json.loads((target / 'neural_style.json').read_text())
        assert config == {'version': 1, 'python': str(bare_venv / 'bin' / 'python'),
                          'cache_dir': str(weights), 'device': 'cpu', 'model': 'auto',
                          'stall_seconds': 600, 'time_limit_seconds': 0,
                          'keep_alive_seconds': 600}
        assert os.path.isabs(config['python']) and Path(config['python']).exists()
        assert str(target) in r.stdout
    assert 'Filters > Artistic > Neural Style...' in r.stdout and 'Restart GIMP' in r.stdout


def test_reinstall_keeps_the_time_limits_the_user_set(checkout, home, bare_venv, tmp_path):
    profile, = make_profiles(home, '3.0')
    weights = tmp_path / 'weights'
    assert plugin_only(checkout, bare_venv, weights, env=user_env(home)).returncode == 0
    path = profile / 'plug-ins' / 'neural_style' / 'neural_style.json'
    config = json.loads(path.read_text())
    config.update(stall_seconds=1800, time_limit_seconds='an hour')   # the second is invalid
    path.write_text(json.dumps(config))
    r = plugin_only(checkout, bare_venv, weights, env=user_env(home))
    assert r.returncode == 0, r.stderr
    config = json.loads(path.read_text())
    assert (config['stall_seconds'], config['time_limit_seconds']) == (1800, 0)


def test_run_bit_follows_read_bits(tmp_path):
    f = tmp_path / 'p.py'
    f.write_text('')
    f.chmod(0o640)
    inst.make_executable(f)
    assert stat.S_IMODE(f.stat().st_mode) == 0o750
    f.chmod(0o644)
    inst.make_executable(f)
    assert stat.S_IMODE(f.stat().st_mode) == 0o755


def test_second_run_updates_in_place_and_touches_nothing_else(checkout, home, bare_venv,
                                                               tmp_path):
    profile = make_profiles(home, '3.0')[0]
    neighbour = profile / 'plug-ins' / 'other_plugin' / 'other_plugin.py'
    neighbour.parent.mkdir(parents=True)
    neighbour.write_text('print("someone else")\n')
    env = user_env(home)
    assert plugin_only(checkout, bare_venv, tmp_path / 'w', env=env).returncode == 0
    target = profile / 'plug-ins' / 'neural_style'
    (target / 'removed_in_new_version.py').write_text('old')       # left by an older release
    (target / 'help' / 'en' / 'old-page.html').write_text('old')     # a help page since dropped
    (checkout / 'plugin/neural_style/neural_style.py').write_text('# version 2\n')
    r = plugin_only(checkout, bare_venv, tmp_path / 'w', '--device', 'cuda', env=env)
    assert r.returncode == 0, r.stderr
    assert (target / 'neural_style.py').read_text() == '# version 2\n'
    assert (target / 'neural_style.py').stat().st_mode & stat.S_IXUSR
    assert not (target / 'removed_in_new_version.py').exists()
    assert not (target / 'help' / 'en' / 'old-page.html').exists()
    assert (target / 'help' / 'en' / 'index.html').exists()
    assert json.loads((target / 'neural_style.json').read_text())['device'] == 'cuda'
    assert neighbour.read_text() == 'print("someone else")\n'
    assert not list(target.glob('*.part'))


def test_explicit_plugins_dirs_are_used_instead_of_profiles(checkout, home, bare_venv, tmp_path):
    make_profiles(home, '3.0')
    a, b = tmp_path / 'gimp-a' / 'plug-ins', tmp_path / 'gimp-b' / 'plug-ins'
    a.parent.mkdir()
    b.parent.mkdir()
    r = plugin_only(checkout, bare_venv, tmp_path / 'w', '--gimp-plugins-dir', a,
                    '--gimp-plugins-dir', b, env=user_env(home))
    assert r.returncode == 0, r.stderr
    assert (a / 'neural_style/neural_style.py').is_file()
    assert (b / 'neural_style/neural_style.json').is_file()
    assert not (home / '.config/GIMP/3.0/plug-ins').exists()


def test_dry_run_changes_nothing_and_shows_every_step(checkout, home, tmp_path):
    make_profiles(home, '3.0', '3.2')
    env = user_env(home)
    before = tree_state(tmp_path)
    r = run_install(checkout, '--dry-run', '--system-site-packages', env=env)
    assert r.returncode == 0, r.stderr
    assert tree_state(tmp_path) == before
    venv = home / '.local/share/neural-style/venv'
    out = r.stdout
    for step in ('-m venv --system-site-packages %s' % venv, '-m pip install',
                 '-m nst_core weights fetch', '-m nst_core weights verify',
                 'write %s' % (home / '.config/GIMP/3.2/plug-ins/neural_style/neural_style.py'),
                 'write %s' % (home / '.config/GIMP/3.0/plug-ins/neural_style/nst_protocol.py'),
                 '"python": "%s"' % (venv / 'bin' / 'python'), 'nothing was changed'):
        assert step in out, step


def test_dry_run_of_a_reinstall_and_of_uninstall_change_nothing(checkout, home, bare_venv,
                                                                 tmp_path):
    make_profiles(home, '3.0')
    env = user_env(home)
    assert plugin_only(checkout, bare_venv, tmp_path / 'w', env=env).returncode == 0
    (bare_venv / inst.VENV_MARKER).write_text('{}')
    (tmp_path / 'w').mkdir()
    (tmp_path / 'w' / 'manifest.json').write_text('{}')
    before = tree_state(tmp_path)
    for args in (['--plugin-only', '--venv', bare_venv, '--weights-dir', tmp_path / 'w'],
                 ['--uninstall', '--purge-weights', '--venv', bare_venv]):
        r = run_install(checkout, '--dry-run', *args, env=env)
        assert r.returncode == 0, r.stderr
        assert tree_state(tmp_path) == before
    assert 'would remove %s' % bare_venv in r.stdout
    assert 'would remove %s' % (tmp_path / 'w') in r.stdout


# ---------------------------------------------------------------- uninstall

def test_uninstall_removes_plugins_and_created_venv_keeps_weights(checkout, home, bare_venv,
                                                                  tmp_path):
    profiles = make_profiles(home, '3.0', '3.2')
    neighbour = profiles[0] / 'plug-ins' / 'other_plugin'
    neighbour.mkdir(parents=True)
    weights = tmp_path / 'w'
    weights.mkdir()
    (weights / 'manifest.json').write_text('{}')
    env = user_env(home)
    assert plugin_only(checkout, bare_venv, weights, env=env).returncode == 0
    (bare_venv / inst.VENV_MARKER).write_text('{}')     # as if install.py had created it
    r = run_install(checkout, '--uninstall', env=env)   # venv found through the config
    assert r.returncode == 0, r.stderr
    assert not any((p / 'plug-ins' / 'neural_style').exists() for p in profiles)
    assert neighbour.is_dir()
    assert not bare_venv.exists()
    assert (weights / 'manifest.json').is_file()
    assert 'kept' in r.stdout
    again = run_install(checkout, '--uninstall', env=env)
    assert again.returncode == 0 and 'No installed Neural Style' in again.stdout


def test_uninstall_keeps_a_venv_it_did_not_create(checkout, home, bare_venv, tmp_path):
    make_profiles(home, '3.0')
    env = user_env(home)
    assert plugin_only(checkout, bare_venv, tmp_path / 'w', env=env).returncode == 0
    r = run_install(checkout, '--uninstall', env=env)
    assert r.returncode == 0, r.stderr
    assert (bare_venv / 'bin' / 'python').exists()
    assert 'Keeping %s' % bare_venv in r.stdout


def test_purge_weights_removes_only_a_weights_folder(checkout, home, bare_venv, tmp_path):
    make_profiles(home, '3.0')
    env = user_env(home)
    weights = tmp_path / 'w'
    weights.mkdir()
    (weights / 'manifest.json').write_text('{}')
    (weights / 'vgg16-hed.pth').write_bytes(b'x')
    assert plugin_only(checkout, bare_venv, weights, env=env).returncode == 0
    r = run_install(checkout, '--uninstall', '--purge-weights', env=env)
    assert r.returncode == 0, r.stderr
    assert not weights.exists()
    not_weights = tmp_path / 'photos'
    not_weights.mkdir()
    (not_weights / 'holiday.jpg').write_bytes(b'x')
    r = run_install(checkout, '--uninstall', '--purge-weights', '--weights-dir', not_weights,
                    env=env)
    assert r.returncode == 0 and (not_weights / 'holiday.jpg').exists()


def test_never_purges_home_or_its_ancestors(home):
    where = inst.Where('linux', {}, home)
    assert not inst.safe_to_purge(home, where)
    assert not inst.safe_to_purge(home.parent, where)
    assert not inst.safe_to_purge(Path(home.anchor), where)
    assert inst.safe_to_purge(home / '.cache' / 'nst_core', where)


# ---------------------------------------------------------------- errors

def test_no_gimp3_profile_is_a_clear_error_before_anything_is_created(checkout, home):
    r = run_install(checkout, env=user_env(home))
    assert r.returncode == 1
    assert 'No GIMP 3 profile found' in r.stderr
    assert 'Start GIMP 3 once' in r.stderr and '--gimp-plugins-dir' in r.stderr
    assert list(home.iterdir()) == []


def test_only_gimp_210_says_it_is_not_gimp3(checkout, home):
    make_profiles(home, '2.10')
    r = run_install(checkout, env=user_env(home))
    assert r.returncode == 1
    assert 'GIMP 2.10' in r.stderr and 'not GIMP 3' in r.stderr
    assert sorted(p.name for p in (home / '.config/GIMP').iterdir()) == ['2.10']


def test_python_that_cannot_run(checkout, home, tmp_path):
    make_profiles(home, '3.0')
    r = run_install(checkout, '--python', tmp_path / 'no-such-python', env=user_env(home))
    assert r.returncode == 1
    assert 'Cannot run the Python interpreter' in r.stderr and '--python' in r.stderr


def test_python_too_old(checkout, home, tmp_path):
    make_profiles(home, '3.0')
    # Stands in for a Python 3.8 (none on this machine): answers the probe as 3.8 would.
    old = tmp_path / 'python3.8'
    old.write_text('#!/bin/sh\necho \'%s{"version": [3, 8, 18], "executable": "%s", '
                   '"in_venv": false, "purelib": "/x", "platlib": "/x", "has_venv": true}\'\n'
                   % (inst.ANSWER, old))
    old.chmod(0o755)
    r = run_install(checkout, '--python', old, env=user_env(home))
    assert r.returncode == 1
    assert 'Python 3.8.18' in r.stderr and 'needs Python 3.9 or newer' in r.stderr
    with pytest.raises(inst.InstallError):
        inst.check_python_version((3, 8, 10), 'x')
    inst.check_python_version((3, 9, 0), 'x')


def find_python(version):
    """A real interpreter of that version (PATH or pyenv), or skip."""
    pyenv = sorted(Path.home().glob('.pyenv/versions/%s.*/bin/python%s' % (version, version)))
    for candidate in [str(p) for p in pyenv] + [shutil.which('python%s' % version)]:
        if candidate and subprocess.run([candidate, '-c', 'pass'],
                                        capture_output=True).returncode == 0:
            return candidate                 # (a pyenv shim may exist and still not run)
    pytest.skip('no Python %s on this machine' % version)


@pytest.mark.parametrize('version', ['2.7', '3.6', '3.8'])
def test_real_old_pythons_get_a_clear_message(checkout, home, version):
    make_profiles(home, '3.0')
    old = find_python(version)
    r = subprocess.run([old, str(checkout / 'install.py')], env=user_env(home),
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert 'this is Python %s' % version in r.stderr and 'needs Python 3.9' in r.stderr
    r = run_install(checkout, '--python', old, env=user_env(home))
    assert r.returncode == 1 and 'needs Python 3.9 or newer' in r.stderr
    assert list(home.iterdir()) == [home / '.config']


def test_runs_on_python_39(checkout, home, bare_venv, tmp_path):
    make_profiles(home, '3.0')
    r = subprocess.run([find_python('3.9'), str(checkout / 'install.py'), '--plugin-only',
                        '--venv', str(bare_venv), '--weights-dir', str(tmp_path / 'w')],
                       env=user_env(home), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (home / '.config/GIMP/3.0/plug-ins/neural_style/neural_style.json').is_file()


def test_answers_from_an_interpreter_survive_library_noise_on_stdout():
    # Debian's torch (UCX) prints "UCX ERROR ..." on stdout when imported in a chroot.
    noisy = 'print("[123] UCX  ERROR failed to get boot id")\nanswer = "/home/u/.cache/nst_core"'
    assert inst.ask(sys.executable, noisy) == '/home/u/.cache/nst_core'
    with pytest.raises(ValueError):
        inst.ask(sys.executable, 'raise SystemExit(3)')


def test_missing_venv_module_says_how_to_get_it(checkout, home, tmp_path):
    make_profiles(home, '3.0')
    # Debian without python3-venv: `import ensurepip` fails. Shadow it for the probed Python.
    shadow = tmp_path / 'shadow' / 'ensurepip'
    shadow.mkdir(parents=True)
    (shadow / '__init__.py').write_text('raise ImportError("ensurepip is not available")\n')
    env = user_env(home, PYTHONPATH=tmp_path / 'shadow')
    r = run_install(checkout, '--venv', tmp_path / 'v', env=env)
    assert r.returncode == 1
    assert 'apt install python3-venv' in r.stderr
    assert not (tmp_path / 'v').exists()


def test_pip_failure_shows_its_tail_and_what_to_do(checkout, home, bare_venv, tmp_path):
    make_profiles(home, '3.0')
    import pip
    # The venv gets this interpreter's real pip; pip then runs without any package index.
    site = Path(pip.__file__).resolve().parent.parent
    purelib = subprocess.run([str(bare_venv / 'bin/python'), '-c',
                              'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
                             capture_output=True, text=True, check=True).stdout.strip()
    Path(purelib, 'real_pip.pth').write_text(str(site) + '\n')
    env = user_env(home, PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX='1')
    env.pop('PIP_FIND_LINKS', None)
    r = run_install(checkout, '--venv', bare_venv, '--skip-weights', env=env)
    assert r.returncode == 1
    assert 'pip install nst_core failed' in r.stderr
    assert 'Last lines of its output' in r.stderr and 'What to do' in r.stderr
    assert 'No matching distribution' in r.stderr or 'Could not find' in r.stderr
    assert not (home / '.config/GIMP/3.0/plug-ins/neural_style').exists()


def test_builds_without_isolation_only_when_setuptools_can(bare_venv):
    from importlib import metadata      # not `import setuptools`: it fights pip's distutils
    try:
        major, minor = map(int, metadata.version('setuptools').split('.')[:2])
    except metadata.PackageNotFoundError:
        major, minor = 0, 0
    can = (major, minor) >= (61, 0) and (
        (major, minor) >= (70, 1) or importlib.util.find_spec('wheel') is not None)
    assert inst.local_build_flags(sys.executable) == (['--no-build-isolation'] if can else [])
    assert inst.local_build_flags(bare_venv / 'bin' / 'python') == []     # no setuptools there


def test_a_folder_that_is_not_a_venv_is_refused(checkout, home, tmp_path):
    make_profiles(home, '3.0')
    notes = tmp_path / 'notes'
    notes.mkdir()
    (notes / 'todo.txt').write_text('keep me')
    r = run_install(checkout, '--venv', notes, env=user_env(home))
    assert r.returncode == 1 and 'cannot be used' in r.stderr
    assert [p.name for p in notes.iterdir()] == ['todo.txt']


def test_plugin_only_needs_an_existing_venv(checkout, home, tmp_path):
    make_profiles(home, '3.0')
    r = run_install(checkout, '--plugin-only', '--venv', tmp_path / 'none', env=user_env(home))
    assert r.returncode == 1 and 'needs an existing venv' in r.stderr


def test_plugins_dir_with_missing_parent_is_refused(checkout, home, tmp_path):
    r = run_install(checkout, '--gimp-plugins-dir', tmp_path / 'typo' / 'plug-ins',
                    env=user_env(home))
    assert r.returncode == 1 and 'parent folder does not exist' in r.stderr
    assert not (tmp_path / 'typo').exists()


def test_foreign_folder_named_like_the_plugin_is_left_alone(checkout, home, bare_venv,
                                                            tmp_path):
    profile = make_profiles(home, '3.0')[0]
    foreign = profile / 'plug-ins' / 'neural_style'
    foreign.mkdir(parents=True)
    (foreign / 'something_else.py').write_text('mine')
    r = plugin_only(checkout, bare_venv, tmp_path / 'w', env=user_env(home))
    assert r.returncode == 1 and 'does not hold this plug-in' in r.stderr
    assert [p.name for p in foreign.iterdir()] == ['something_else.py']


def test_incomplete_checkout(checkout, home, bare_venv, tmp_path):
    make_profiles(home, '3.0')
    (checkout / 'plugin/neural_style/neural_style.py').unlink()
    r = plugin_only(checkout, bare_venv, tmp_path / 'w', env=user_env(home))
    assert r.returncode == 1 and 'checkout is incomplete' in r.stderr


def test_purge_weights_without_uninstall_is_a_usage_error(checkout, home):
    r = run_install(checkout, '--purge-weights', env=user_env(home))
    assert r.returncode == 2 and '--uninstall' in r.stderr


# ---------------------------------------------------------------- which torch

class Said:
    """An Actions that records what install.py says (and changes nothing)."""

    def __init__(self):
        self.lines = []
        self.act = inst.Actions(True, out=self.lines.append)

    @property
    def text(self):
        return '\n'.join(self.lines)


@pytest.fixture
def local_index(tmp_path):
    """A package index on 127.0.0.1 that lists a torch wheel (PEP 503 page, no wheel behind
    it): the reachable CPU-only index, which this machine cannot reach for real."""
    import http.server
    import threading
    root = tmp_path / 'index'
    (root / 'torch').mkdir(parents=True)
    (root / 'torch' / 'index.html').write_text(
        '<a href="torch-2.6.0%2Bcpu-cp311-cp311-linux_x86_64.whl">'
        'torch-2.6.0+cpu-cp311-cp311-linux_x86_64.whl</a>\n')

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(root), **kw)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield 'http://127.0.0.1:%d/' % server.server_address[1]
    server.shutdown()


def linux(tmp_path, **env):
    return inst.Where('linux', env, tmp_path, 'x86_64')


def test_the_cpu_index_here_real_probe_and_the_choice_that_follows(tmp_path):
    """The real network: download.pytorch.org cannot be reached from these machines, so
    install.py falls back to PyPI, and says why and what that costs. Where it can be
    reached, the CPU-only wheels are chosen."""
    reachable, why = inst.index_reachable(inst.CPU_INDEX)
    said = Said()
    source = inst.choose_torch_source('auto', linux(tmp_path), said.act, gpu=False)
    if reachable:
        assert source.index == inst.CPU_INDEX and 'CPU-only wheels' in said.text
    else:
        assert why                                   # e.g. "Name or service not known"
        assert source == inst.TorchSource('pypi-cuda', None, source.why)
        assert inst.CPU_INDEX in said.text and 'unreachable (%s)' % why in said.text
        assert '5.5 GB installed' in said.text and 'runs on the CPU too' in said.text


def test_a_reachable_cpu_index_is_used_when_there_is_no_nvidia_gpu(tmp_path, local_index):
    said = Said()
    source = inst.choose_torch_source('auto', linux(tmp_path), said.act, gpu=False,
                                      probe_index=lambda url: inst.index_reachable(local_index))
    assert source.name == 'cpu' and source.index == inst.CPU_INDEX
    assert 'no NVIDIA GPU here' in said.text and 'under 1 GB installed' in said.text
    named = Said()
    source = inst.choose_torch_source(local_index, linux(tmp_path), named.act, gpu=False)
    assert source.index == local_index and 'the index named with --torch-index' in named.text


def test_an_index_that_lists_no_torch_does_not_count(tmp_path, local_index):
    ok, why = inst.index_reachable(local_index + 'nothing-here/')
    assert not ok and 'HTTP 404' in why


@pytest.mark.parametrize('where, gpu, env, expected', [
    ('linux', True, {}, 'pypi-cuda'),                    # an NVIDIA GPU: the CUDA build
    ('darwin', False, {}, 'pypi'),                       # PyPI's macOS wheels have no CUDA
    ('win32', False, {}, 'pypi'),                        # nor its Windows ones
    ('linux', False, {'PIP_INDEX_URL': 'https://mirror.example/simple'}, 'user'),
    ('linux', False, {'PIP_EXTRA_INDEX_URL': 'https://download.pytorch.org/whl/cu126'}, 'user'),
])
def test_when_the_cpu_index_is_not_asked(tmp_path, where, gpu, env, expected):
    asked = []
    said = Said()
    source = inst.choose_torch_source('auto', inst.Where(where, env, tmp_path, 'x86_64'),
                                      said.act, gpu=gpu, probe_index=asked.append)
    assert source.name == expected and source.index is None and asked == []
    assert inst.COSTS[expected] in said.text


def test_torch_index_pypi_skips_the_probe(tmp_path):
    said = Said()
    source = inst.choose_torch_source('pypi', linux(tmp_path), said.act, gpu=False,
                                      probe_index=lambda url: pytest.fail('probed %s' % url))
    assert source.name == 'pypi-cuda' and '5.5 GB' in said.text


def test_dry_run_shows_the_torch_step_from_the_cpu_index(checkout, home, tmp_path, local_index):
    make_profiles(home, '3.0')
    r = run_install(checkout, '--dry-run', '--venv', tmp_path / 'v', '--torch-index',
                    local_index, env=user_env(home))
    assert r.returncode == 0, r.stderr
    assert 'torch: from %s (CPU-only wheels)' % local_index in r.stdout
    assert 'pip install --disable-pip-version-check torch torchvision --index-url %s' \
        % local_index in r.stdout
    assert 'torch:          from PyTorch\'s CPU-only index %s' % local_index in r.stdout
    assert not (tmp_path / 'v').exists()


def test_dry_run_here_says_the_fallback(checkout, home, tmp_path):
    """The real probe again, through the command: unreachable here, so PyPI."""
    make_profiles(home, '3.0')
    env = user_env(home)
    env.pop('PIP_INDEX_URL', None)
    env.pop('PIP_EXTRA_INDEX_URL', None)
    r = run_install(checkout, '--dry-run', '--venv', tmp_path / 'v', env=env)
    assert r.returncode == 0, r.stderr
    if inst.has_nvidia_gpu(inst.this_machine()) or inst.index_reachable(inst.CPU_INDEX)[0]:
        pytest.skip('this machine has an NVIDIA GPU or reaches the CPU-only index')
    assert "torch: from PyPI, because PyTorch's CPU-only index" in r.stdout
    assert 'torch torchvision --index-url' not in r.stdout
    assert 'torch:          from PyPI (the CUDA build, about 5.5 GB)' in r.stdout


def test_what_the_system_torch_costs_is_said(tmp_path):
    """This interpreter's torch (PyPI's, with MKL and oneDNN): named, and no warning."""
    pytest.importorskip('torch')
    notes = inst.system_torch_notes(sys.executable)
    import torch
    assert notes and notes[0] == "torch: the system's %s (no download)." % torch.__version__
    assert not any('reference BLAS' in line or 'no oneDNN' in line for line in notes), notes


# ---------------------------------------------------------------- the real thing

@pytest.mark.slow
def test_real_install_reinstall_and_uninstall(checkout, home, tmp_path):
    """venv on this interpreter's torch (--system-site-packages), nst_core from the checkout."""
    profile = make_profiles(home, '3.0')[0]
    venv = tmp_path / 'venv'
    env = user_env(home)
    args = ['--python', sys.executable, '--system-site-packages', '--venv', venv,
            '--skip-weights', '--weights-dir', tmp_path / 'weights']
    r = run_install(checkout, *args, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    python = venv / 'bin' / 'python'
    config = json.loads((profile / 'plug-ins/neural_style/neural_style.json').read_text())
    assert config['python'] == str(python)
    where = subprocess.run([str(python), '-c', 'import nst_core, torch; print(nst_core.__file__)'],
                           capture_output=True, text=True, cwd=str(tmp_path), env=env)
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(venv)        # the venv's copy, not the checkout
    listed = subprocess.run([str(python), '-m', 'nst_core', 'weights', 'list', '--cache-dir',
                             str(tmp_path / 'weights')], capture_output=True, text=True,
                            cwd=str(tmp_path), env=env)
    assert listed.returncode == 0, listed.stderr
    assert 'vgg16-hed' in listed.stdout
    assert not (checkout / 'build').exists() and not list(checkout.glob('*.egg-info'))

    again = run_install(checkout, *args, env=env)
    assert again.returncode == 0, again.stderr
    assert 'Reusing the existing venv' in again.stdout

    gone = run_install(checkout, '--uninstall', env=env)
    assert gone.returncode == 0, gone.stderr
    assert not venv.exists()
    assert not (profile / 'plug-ins/neural_style').exists()


@pytest.mark.slow
def test_real_default_install_takes_torch_from_the_fallback(checkout, home, tmp_path):
    """install.py as a user runs it (no --system-site-packages) on this machine, which has
    no NVIDIA GPU and cannot reach PyTorch's CPU-only index: the fallback runs for real,
    pip installs torch from PyPI, and the summary says so."""
    if inst.has_nvidia_gpu(inst.this_machine()) or inst.index_reachable(inst.CPU_INDEX)[0]:
        pytest.skip('this machine has an NVIDIA GPU or reaches the CPU-only index')
    make_profiles(home, '3.0')
    venv = tmp_path / 'venv'
    env = user_env(home)
    r = run_install(checkout, '--venv', venv, '--skip-weights', '--weights-dir',
                    tmp_path / 'weights', env=env, timeout=1800)
    assert "torch: from PyPI, because PyTorch's CPU-only index" in r.stdout
    if 'Not enough disk space for torch' in r.stderr:
        # A machine with under 9 GB free (CI's, once): install.py must refuse before pip
        # downloads anything, and be right that the room is missing.
        stays, passes = inst.ROOM['pypi-cuda']
        assert r.returncode == 1 and shutil.disk_usage(tmp_path).free < stays + passes
        assert 'pip install' not in r.stdout, r.stdout
        assert not list(venv.glob('lib/python*/site-packages/torch'))
        return
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    assert 'torch:          from PyPI (the CUDA build, about 5.5 GB)' in r.stdout
    got = subprocess.run([str(venv / 'bin' / 'python'), '-c',
                          'import torch, nst_core; print(torch.__version__)'],
                         capture_output=True, text=True, cwd=str(tmp_path), env=env)
    assert got.returncode == 0 and got.stdout.strip(), got.stderr
    assert '+cpu' not in got.stdout                  # PyPI's build, not the CPU index's
    shutil.rmtree(venv)                              # 5.5 GB


def test_demo_without_gimp_skips_the_plugin_and_runs_the_sample(tmp_path, capsys):
    """--demo is the README's first command: it must work where GIMP 3 is not installed."""
    home = tmp_path / 'home'
    home.mkdir()
    where = inst.Where('linux', {'HOME': str(home)}, home)
    code = inst.main(['--demo', '--dry-run', '--venv', str(tmp_path / 'v')], where=where)
    out = capsys.readouterr().out
    assert code == 0
    assert 'Continuing without the plug-in' in out
    assert 'samples/chelsea.jpg' in out and 'would write' in out
    assert set(tmp_path.rglob('*')) == {home}
    assert inst.main(['--dry-run', '--venv', str(tmp_path / 'v')], where=where) == 1


# ---------------------------------------------------------------- disk space

GB = inst.GB


def test_no_room_for_torch_is_refused_before_pip_starts(tmp_path):
    """The CUDA build needs 8.9 GB at its peak: with the venv and the temporary folder on one
    disk of 6 GB free, install.py says so, in numbers, and what to do."""
    venv = tmp_path / 'not-yet' / 'venv'
    with pytest.raises(inst.InstallError) as e:
        inst.check_room('pypi-cuda', venv, inst.Actions(False), free=lambda p: 6 * GB,
                        device=lambda p: 1)
    text = str(e.value)
    assert 'has 6.0 GB free' in text and 'about 8.9 GB there' in text
    assert '5.5 GB stay in the venv %s' % venv in text and '--system-site-packages' in text
    assert str(tmp_path) in text                 # the nearest folder that exists, not the venv
    inst.check_room('pypi-cuda', venv, inst.Actions(False), free=lambda p: 9 * GB,
                    device=lambda p: 1)          # enough: nothing said
    inst.check_room('cpu', venv, inst.Actions(False), free=lambda p: 6 * GB,
                    device=lambda p: 1)          # the CPU build fits in 6 GB


def test_the_temporary_folder_on_its_own_disk_is_checked_for_the_download(tmp_path):
    """/tmp as a small tmpfs: the venv's disk holds the 5.5 GB, the download does not fit."""
    temp = Path(tempfile.gettempdir())
    disks = {temp: ('tmpfs', 2 * GB)}
    free = lambda p: disks.get(p, ('disk', 6 * GB))[1]
    device = lambda p: disks.get(p, ('disk',))[0]
    with pytest.raises(inst.InstallError) as e:
        inst.check_room('pypi-cuda', tmp_path / 'venv', inst.Actions(False), free=free,
                        device=device)
    assert '%s has 2.0 GB free' % temp in str(e.value) and 'about 3.4 GB' in str(e.value)


def test_dry_run_and_the_users_own_index_do_not_refuse(tmp_path):
    said = Said()
    inst.check_room('pypi-cuda', tmp_path / 'v', said.act, free=lambda p: 1 * GB,
                    device=lambda p: 1)
    assert said.text.startswith('warning: Not enough disk space for torch')
    inst.check_room('user', tmp_path / 'v', inst.Actions(False), free=lambda p: 0,
                    device=lambda p: 1)          # its size is unknown: pip decides


def test_a_full_disk_during_pip_is_called_a_full_disk(tmp_path):
    """A real ENOSPC (writing to /dev/full), through the same wrapper as every pip step: the
    advice speaks of disk space, not of the network."""
    if not os.path.exists('/dev/full'):
        pytest.skip('no /dev/full here')
    cmd = [sys.executable, '-c', "f = open('/dev/full', 'wb', buffering=0); f.write(b'x')"]
    with pytest.raises(inst.InstallError) as e:
        inst.run_pip(inst.Actions(False, out=lambda t: None), cmd, 'pip install nst_core',
                     tmp_path / 'venv')
    text = str(e.value)
    assert 'No space left on device' in text and 'the disk is full' in text
    assert 'pip cache purge' in text and 'network' not in text
    cmd = [sys.executable, '-c', 'raise SystemExit("ERROR: No matching distribution")']
    with pytest.raises(inst.InstallError) as e:
        inst.run_pip(inst.Actions(False, out=lambda t: None), cmd, 'pip install x', tmp_path)
    assert 'pip needs to reach the package index' in str(e.value)


@pytest.fixture
def small_disk(tmp_path):
    """A 64 MB tmpfs (root only: mount)."""
    where = tmp_path / 'small'
    where.mkdir()
    if os.geteuid() != 0 or not shutil.which('mount'):
        pytest.skip('mounting a small disk needs root')
    r = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=64M', 'tmpfs', str(where)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip('cannot mount a tmpfs here: %s' % r.stderr.strip())
    yield where
    subprocess.run(['umount', '-l', str(where)], check=True)


def test_real_install_onto_a_small_disk_stops_before_pip_and_loses_nothing(
        checkout, home, tmp_path, small_disk):
    """install.py for real with its venv on a 64 MB disk and PyPI's torch (5.5 GB): one clear
    error before any download, and an earlier install's plug-in and config are untouched."""
    plugins = make_profiles(home, '3.0')[0] / 'plug-ins'
    earlier = plugins / inst.PLUGIN
    earlier.mkdir(parents=True)
    (earlier / inst.CONFIG_NAME).write_text('{"python": "/earlier/venv/bin/python"}\n')
    before = tree_state(plugins)
    venv = small_disk / 'venv'
    r = run_install(checkout, '--venv', venv, '--torch-index', 'pypi', '--skip-weights',
                    env=user_env(home), timeout=300)
    assert r.returncode == 1, r.stdout[-2000:]
    assert 'error: Not enough disk space for torch: %s has' % venv in r.stderr, r.stderr
    assert 'pip install --disable' not in r.stdout       # nothing downloaded
    assert tree_state(plugins) == before


# ---------------------------------------------------------------- a worker on another computer

def test_the_remote_option_and_what_goes_with_it():
    assert inst.remote_option('me@gpu-box') == (None, 'ssh://me@gpu-box')
    assert inst.remote_option('gpu-box:2222') == (None, 'ssh://gpu-box:2222')
    assert inst.remote_option('ssh://me@gpu-box/') == (None, 'ssh://me@gpu-box')
    url = 'ssh://me@gpu-box:2222/opt/my%20venv/bin/python'
    assert inst.remote_option(url) == (url, 'ssh://me@gpu-box:2222')
    for bad in ('me@', 'gpu-box:port', 'http://gpu-box/python', 'ssh://gpu-box/python?x=1'):
        with pytest.raises(inst.InstallError, match='expected \\[user@\\]host\\[:port\\]'):
            inst.remote_option(bad)
    assert inst.REMOTE_PYTHONS == ('.local/share/neural-style/venv/bin/python',
                                   'Library/Application Support/neural-style/venv/bin/python')
    local = inst.parse_args(['--remote', ''])
    assert local.remote is None and local.local and local.plugin_only
    for wrong in (['--worker-only', '--remote', 'box'], ['--worker-only', '--plugin-only'],
                  ['--worker-only', '--gimp-plugins-dir', 'x'], ['--remote', 'box', '--local'],
                  ['--ssh-command', 'ssh -F x']):
        with pytest.raises(SystemExit):
            inst.parse_args(wrong)


def test_the_hello_is_found_and_said(capsys):
    hello = {'event': 'hello', 'protocol': 1, 'version': '0.1.0', 'host': 'gpu-box',
             'devices': [{'name': 'cuda:0', 'label': 'NVIDIA H200'},
                         {'name': 'cpu', 'label': 'x86_64'}]}
    out = ('Welcome to the box\n%s\n' % json.dumps(hello)).encode()
    assert inst.read_hello(out) == (hello, ['Welcome to the box'])
    assert inst.describe_devices(hello) == 'NVIDIA H200 (cuda:0), x86_64 (cpu)'
    assert inst.best_device(hello) == 'NVIDIA H200'
    assert inst.best_device(dict(hello, devices=[{'name': 'cpu', 'label': 'x'}])) == 'CPU'
    assert inst.read_hello(b'/usr/bin/python3: No module named nst_core\n')[0] is None


def test_worker_only_needs_no_gimp_and_says_how_to_reach_it(checkout, home, tmp_path):
    """The GPU box has no GIMP: no profile is looked for, no plug-in written, and the summary
    names the --remote argument for the laptop (short with the default venv, else the URL)."""
    import getpass
    import socket
    env = user_env(home)
    login = '%s@%s' % (getpass.getuser(), socket.gethostname())
    before = tree_state(tmp_path)
    r = run_install(checkout, '--worker-only', '--dry-run', '--skip-weights', '--torch-index',
                    'pypi', env=env)
    assert r.returncode == 0, r.stderr
    assert tree_state(tmp_path) == before
    venv = home / '.local/share/neural-style/venv'
    assert '-m venv %s' % venv in r.stdout and '-m pip install' in r.stdout
    assert 'plug-in' not in r.stdout.replace('no GIMP plug-in', '') and 'GIMP 3' not in r.stdout
    assert '    python3 install.py --remote %s\n' % login in r.stdout
    assert '    python3 install.py --remote ssh://%s%s\n' % (login, venv / 'bin/python') \
        in r.stdout
    r = run_install(checkout, '--worker-only', '--dry-run', '--skip-weights', '--torch-index',
                    'pypi', '--venv', tmp_path / 'my venv', env=env)
    assert r.returncode == 0, r.stderr
    assert '--remote %s\n' % login not in r.stdout          # not where the laptop looks
    assert '--remote ssh://%s%s\n' % (login, str(tmp_path / 'my%20venv/bin/python')) \
        in r.stdout


@pytest.fixture
def sshd(tmp_path):
    """A real sshd on 127.0.0.1 (tests/sshd.py) standing in for the GPU box."""
    import sshd as ssh_server
    if ssh_server.MISSING:
        pytest.skip(ssh_server.MISSING)
    servers = []

    def start(**more):
        server = ssh_server.SSHServer(tmp_path / ('sshd%d' % len(servers)), **more)
        servers.append(server)
        return server
    yield start
    for server in servers:
        server.stop()


def wrapper(path, command):
    """A stand-in for the remote engine's interpreter: a script that runs `command`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('#!/bin/sh\nexec %s "$@"\n' % command)
    path.chmod(0o755)
    return path


def remote_home(server, home):
    """Make the server run each command in `home` with HOME set to it, as sshd does in the
    user's own home, which a test must not touch."""
    home.mkdir(parents=True, exist_ok=True)
    with open(server.folder / 'sshd_config', 'a') as f:
        f.write('ForceCommand HOME=%s; export HOME; cd "$HOME" && eval "$SSH_ORIGINAL_COMMAND"\n'
                % shlex.quote(str(home)))


def remote_install(checkout, server, target, env):
    return run_install(checkout, '--remote', target, '--ssh-command',
                       shlex.join(server.ssh_command), env=env, timeout=300)


@pytest.mark.parametrize('named', ['host only', 'full url'])
def test_remote_probes_the_engine_over_ssh_and_points_the_plugin_at_it(checkout, home,
                                                                       tmp_path, sshd, named,
                                                                       bare_venv):
    """install.py --remote against a real sshd whose engine is this checkout's (its venv's
    interpreter behind a wrapper script): the plug-in is installed with no torch here, its
    config names the remote, and --local goes back to this computer."""
    profile, = make_profiles(home, '3.0')
    server = sshd()
    there = tmp_path / 'gpu-box-home'
    python = wrapper(there / inst.REMOTE_PYTHONS[0], sys.executable)
    if named == 'host only':
        remote_home(server, there)
        target = '%s@127.0.0.1:%d' % (server.user, server.port)
    else:
        target = server.url(str(python))
    server.start()
    env = user_env(home)
    r = remote_install(checkout, server, target, env)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    label = '127.0.0.1: %s' % inst.best_device(json.loads(subprocess.run(
        [sys.executable, '-m', 'nst_core', 'remote', '--probe'], capture_output=True,
        text=True, cwd=str(tmp_path)).stdout))
    target_dir = profile / 'plug-ins' / 'neural_style'
    config = json.loads((target_dir / 'neural_style.json').read_text())
    assert config == {'version': 1, 'remote': server.url(str(python)), 'remote_label': label,
                      'ssh_command': server.ssh_command, 'device': 'auto', 'model': 'auto',
                      'stall_seconds': 600, 'time_limit_seconds': 0, 'keep_alive_seconds': 600}
    assert (target_dir / 'neural_style.py').is_file() and (target_dir / 'nst_client.py').is_file()
    assert 'Found 127.0.0.1:%d' % server.port in r.stdout
    assert 'nst_core %s, ' % inst.nst_protocol.ENGINE_VERSION in r.stdout and '(cpu)' in r.stdout
    assert '  runs on:        %s (%s)' % (label, config['remote']) in r.stdout
    assert not (home / '.local/share/neural-style').exists()      # no engine here
    if named == 'full url':
        return
    r = run_install(checkout, '--local', '--venv', bare_venv, '--weights-dir', tmp_path / 'w',
                    env=env)
    assert r.returncode == 0, r.stderr
    config = json.loads((target_dir / 'neural_style.json').read_text())
    assert 'remote' not in config and config['python'] == str(bare_venv / 'bin/python')
    assert '  runs on:        this computer' in r.stdout


@pytest.mark.parametrize('engine, said', [
    ('/usr/bin/python3 -I', 'No module named nst_core'),
    ('echo \'{"event": "hello", "protocol": 1, "version": "0.0.9", "host": "old"}\' #',
     'has nst_core 0.0.9, this folder is %s' % inst.nst_protocol.ENGINE_VERSION),
    (None, 'has no Neural Style engine in its usual place'),
])
def test_a_remote_without_our_engine_is_refused_with_the_command_to_run_there(
        checkout, home, tmp_path, sshd, engine, said):
    if engine and not Path(engine.split()[0]).exists() and engine.startswith('/'):
        pytest.skip('no %s' % engine.split()[0])
    profile, = make_profiles(home, '3.0')
    server = sshd()
    there = tmp_path / 'gpu-box-home'
    remote_home(server, there)
    if engine:
        wrapper(there / inst.REMOTE_PYTHONS[0], engine)
    server.start()
    r = remote_install(checkout, server, '%s@127.0.0.1:%d' % (server.user, server.port),
                       user_env(home))
    assert r.returncode == 1, r.stdout
    assert said in r.stderr
    assert '\n    python3 install.py --worker-only\nthen run this again' in r.stderr
    assert not (profile / 'plug-ins').exists()


def test_an_ssh_refusal_is_one_clear_line_within_seconds(checkout, home, tmp_path, sshd):
    """Key login not set up: ssh's own reason and how to set it up, never a password prompt,
    nothing written."""
    import time
    profile, = make_profiles(home, '3.0')
    server = sshd()
    (server.folder / 'authorized_keys').write_text('')          # the key is not authorized
    server.start()
    t0 = time.monotonic()
    r = remote_install(checkout, server, server.url('/opt/python'), user_env(home))
    assert time.monotonic() - t0 < 10
    assert r.returncode == 1
    first = r.stderr.splitlines()[0]
    assert first.startswith('error: ssh could not log in to 127.0.0.1:%d: ' % server.port)
    assert 'Permission denied' in first, r.stderr
    assert 'ssh-copy-id -p %d %s@127.0.0.1' % (server.port, server.user) in r.stderr
    assert not (profile / 'plug-ins').exists()


@pytest.mark.slow
def test_worker_only_then_remote_the_two_commands(checkout, home, tmp_path, sshd):
    """The two commands for real: --worker-only builds the engine's venv (on this
    interpreter's torch) without any GIMP, and --remote with the URL it printed (its host
    made the test's sshd) points the plug-in at it."""
    env = user_env(home)
    venv = tmp_path / 'gpu-box' / 'venv'
    r = run_install(checkout, '--worker-only', '--python', sys.executable,
                    '--system-site-packages', '--venv', venv, '--skip-weights', env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    assert 'devices:        ' in r.stdout and '(cpu)' in r.stdout
    assert not (home / '.config').exists()
    url = next(line.split('--remote ')[1] for line in r.stdout.splitlines()
               if '--remote ssh://' in line)
    path = inst.urlsplit(url).path
    assert path == str(venv / 'bin' / 'python')
    profile, = make_profiles(home, '3.0')
    server = sshd().start()
    r = remote_install(checkout, server, server.url(path), env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    config = json.loads((profile / 'plug-ins/neural_style/neural_style.json').read_text())
    assert config['remote'] == server.url(path)
