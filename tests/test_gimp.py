"""The GIMP plug-in: its options against nst_core's, its imports, and the end-to-end run in
real GIMP 3 (tests/gimp/run.sh: a cached Debian chroot, install.py, gimp-console and GUI gimp
under Xvfb)."""
import ast
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = ROOT / 'plugin' / 'neural_style' / 'neural_style.py'
RUN = ROOT / 'tests' / 'gimp' / 'run.sh'
# what the plug-in's files may import: the standard library, GIMP's gi, and each other
PLUGIN_MODULES = {'nst_client', 'nst_protocol', 'style_choice'}


def run_harness(label, **env):
    """Run tests/gimp/run.sh (env overrides its script choice) and fail on any FAIL line."""
    reason = _cannot_run_gimp()
    if reason:
        pytest.skip(reason)
    t0 = time.time()
    proc = subprocess.run(['bash', str(RUN)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=1800, env=dict(os.environ, **env))
    out = proc.stdout
    print(out[-6000:])
    print('%s took %.0f s' % (label, time.time() - t0))
    if proc.returncode == 2 and 'RESULT' not in out:
        pytest.fail('could not build the GIMP chroot:\n' + out[-3000:])
    failed = [line for line in out.splitlines() if line.startswith('FAIL')]
    assert proc.returncode == 0, '\n'.join(failed) or out[-3000:]


def plugin_tree():
    return ast.parse(PLUGIN.read_text())


def plugin_constant(name):
    for node in plugin_tree().body:
        if isinstance(node, ast.Assign) and any(getattr(t, 'id', None) == name
                                                for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError('%s not found in %s' % (name, PLUGIN))


def test_plugin_options_are_stylize_options_with_the_same_defaults_and_choices():
    from nst_core.stylize import choices, options
    known = options()
    seen = []
    for name, kind, label, blurb, default, low, high in plugin_constant('OPTIONS'):
        key = name.replace('-', '_')
        seen.append(key)
        assert key in known, '%s is not a stylize() option' % name
        assert default == known[key].default, name
        if kind == 'choice':
            assert tuple(value for value, _ in low) == choices(key), name
        elif kind == 'bool':
            assert known[key].annotation is bool and (low, high) == (None, None), name
        else:
            assert low <= default <= high, name
    assert len(seen) == len(set(seen))
    # the options the user meets in GIMP (design brief's table, and fit: refusing a size that
    # does not fit in memory is a dead end without it)
    assert set(seen) == {'method', 'strength', 'style_scale', 'preserve_colors', 'size', 'fit',
                         'preset', 'device', 'seed'}


def plugin_functions(*names):
    """Some of the plug-in's pure functions, without GIMP (the module imports gi)."""
    found = {'os': os, 'STDERR_TAIL_LINES': 15}
    for node in plugin_tree().body:
        if isinstance(node, ast.FunctionDef) and node.name in names:
            exec(compile(ast.Module([node], []), str(PLUGIN), 'exec'), found)
    return found


def test_weights_and_device_failures_speak_to_a_gimp_user():
    fn = plugin_functions('_gb', '_tail', '_memory_message', '_shell_word', '_weights_message',
                          '_failure_message')
    config = {'python': '/home/me/.local/share/neural-style/venv/bin/python',
              'cache_dir': "/home/me/My weights/it's here"}
    text = fn['_failure_message'](1, {'kind': 'weights', 'message': (
        'weights file x.pth is corrupted (...); run `python -m nst_core weights fetch magenta '
        '--force`')}, '/nonexistent', config)
    command = text.split('`')[1]
    assert command == ("/home/me/.local/share/neural-style/venv/bin/python -m nst_core weights "
                       "fetch magenta --force --cache-dir '/home/me/My weights/it'\\''s here'")
    assert shlex.split(command)[-1] == config['cache_dir']
    assert text.endswith('Run the command in a terminal, then try again.')
    text = fn['_failure_message'](1, {'kind': 'device', 'message': (
        "device 'cuda' is not available here (available: cpu); choose auto or cpu")},
        '/nonexistent', config)
    assert text == ("Neural Style failed: device 'cuda' is not available here (available: cpu)."
                    '\nIn the Neural Style dialog: set "Device" to CPU.')


def test_a_bad_trained_model_file_asks_for_another_file_not_a_weights_command():
    fn = plugin_functions('_gb', '_tail', '_memory_message', '_shell_word', '_weights_message',
                          '_failure_message')
    config = {'python': '/venv/bin/python'}
    error = {'kind': 'weights', 'message': 'm.pth is not a fast-neural-style model: it lacks '
             'conv1.conv2d.weight; give a model written by `python -m nst_core train`, ...'}
    text = fn['_failure_message'](1, error, '/nonexistent', config, 'trained')
    assert text == ('Neural Style failed: %s\nIn the Neural Style dialog: choose another '
                    '"Trained model" file.' % error['message'])
    assert 'Run the command' not in text


def test_plugin_imports_only_the_standard_library_and_gi():
    allowed = set(sys.stdlib_module_names) | {'gi'} | PLUGIN_MODULES
    files = sorted(PLUGIN.parent.glob('*.py'))
    assert {f.stem for f in files} == {'neural_style'} | PLUGIN_MODULES - {'nst_protocol'}
    for path in files:
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split('.')[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                imported.add(node.module.split('.')[0])
        assert imported <= allowed, (path.name, imported - allowed)


def style_choice():
    """plugin/neural_style/style_choice.py, whose GIMP calls import gi only when made."""
    import importlib.util
    spec = importlib.util.spec_from_file_location('style_choice',
                                                  PLUGIN.parent / 'style_choice.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_remembered_style_layers_read_back_and_nothing_else_does():
    sc = style_choice()
    painting = sc.record(12, 3, 'starry_night.jpg', 800, 600,
                         sc.describe_image(2, '/photos/tubingen.xcf', 'tubingen.xcf'), True,
                         False, '00ff' * 8)
    text = sc.encode({'style-layer': painting, 'style-layer-2': None, 'style-layer-3': None})
    assert sc.decode(text) == {'style-layer': painting, 'style-layer-2': None,
                               'style-layer-3': None}
    for bad in ('', 'not json', '[]', '{"version": 2, "styles": {}}',
                '{"version": 1, "styles": {"style-layer": {"name": 3}}}',
                '{"version": 1, "styles": {"elsewhere": null}}'):
        assert sc.decode(bad) == {}, bad
    assert sc.describe_record(painting) == '"starry_night.jpg" (image "tubingen.xcf")'


def test_the_same_painting_is_told_by_size_and_pixels_not_by_name():
    sc = style_choice()
    rec = sc.record(12, 3, 'starry_night.jpg', 800, 600, sc.describe_image(2, None, 'x'),
                    False, False, 'a1b2' * 8)
    assert sc.same_painting(rec, 800, 600, 'a1b2' * 8)           # renamed: still the same
    assert not sc.same_painting(rec, 400, 300, 'a1b2' * 8)       # scaled: another
    assert not sc.same_painting(rec, 800, 600, 'a1b3' * 8)       # another picture


def test_results_of_earlier_versions_are_known_by_their_name():
    sc = style_choice()
    for name in ('Neural Style (starry_night.jpg)', 'Neural Style (starry_night.jpg) #2',
                 'Neural Style (Neural Style (a.png))'):
        assert sc.LEGACY_RESULT.match(name), name
    for name in ('starry_night.jpg', 'Neural Style', 'My Neural Style (copy)'):
        assert not sc.LEGACY_RESULT.match(name), name


def test_plugin_is_executable_and_named_for_its_folder():
    # GIMP 3 loads plug-ins/<name>/<name>.py only, and only with its run bit
    assert PLUGIN.parent.name + '.py' == PLUGIN.name
    assert os.access(PLUGIN, os.X_OK) or sys.platform == 'win32'


def _cannot_run_gimp():
    if os.name != 'posix' or os.geteuid() != 0:
        return 'needs root: the GIMP 3 tests build a Debian chroot (debootstrap, chroot)'
    cache = Path(os.environ.get('NS_GIMP_CACHE') or
                 Path(os.environ.get('XDG_CACHE_HOME') or Path.home() / '.cache') /
                 'neural-style-gimp-chroot')
    built = (cache / 'trixie-root' / '.gimp-version').exists()
    if not built and not (shutil.which('debootstrap') or shutil.which('apt-get')):
        return 'no debootstrap and no apt-get to install it: cannot build the GIMP 3 chroot'
    return None


@pytest.mark.slow
@pytest.mark.gimp
def test_plugin_in_real_gimp():
    """Fast and Quality add one correct layer; failures and Cancel leave the image as it was;
    one Ctrl+Z removes the result; the status bar's Cancel stops the worker."""
    run_harness('tests/gimp/run.sh')


@pytest.mark.slow
@pytest.mark.gimp
def test_warm_worker_in_real_gimp():
    """The second run reuses the worker; Cancel and GIMP's kill leave it alive and idle; a
    killed, stale or foreign worker is replaced; a second image gets its own worker;
    keep_alive 0; idle exit (tests/gimp/warm_test.py)."""
    run_harness('warm worker in GIMP', BATCH_SCRIPT=str(RUN.parent / 'warm_test.py'), GUI='0')
