"""The GIMP plug-in: its options against nst_core's, its imports, and the end-to-end run in
real GIMP 3 (tests/gimp/run.sh: a cached Debian chroot, install.py, gimp-console and GUI gimp
under Xvfb)."""
import ast
import json
import os
import re
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
# the plug-in's modules that import no gi, so the tests import them as GIMP's Python does
sys.path.insert(0, str(PLUGIN.parent))
import messages  # noqa: E402
import options  # noqa: E402
import probe  # noqa: E402
import settings  # noqa: E402


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


def test_plugin_options_are_stylize_options_with_the_same_defaults_and_choices():
    from nst_core.api import choices, options as stylize_options
    known = stylize_options()
    seen = []
    for name, kind, label, blurb, default, low, high in options.OPTIONS:
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


def test_weights_and_device_failures_speak_to_a_gimp_user():
    config = {'python': '/home/me/.local/share/neural-style/venv/bin/python',
              'cache_dir': "/home/me/My weights/it's here"}
    text = messages.failure({'kind': 'weights', 'message': 'in English for the command line',
                             'reason': 'weights file x.pth is corrupted (...)',
                             'command': ['weights', 'fetch', 'magenta', '--force'],
                             'after': ''}, 1, '', config)
    assert text.startswith('Neural Style failed: weights file x.pth is corrupted (...); run `')
    command = text.split('`')[1]
    assert command == ("/home/me/.local/share/neural-style/venv/bin/python -m nst_core weights "
                       "fetch magenta --force --cache-dir '/home/me/My weights/it'\\''s here'")
    assert shlex.split(command)[-1] == config['cache_dir']
    assert text.endswith('Run the command in a terminal, then try again.')
    text = messages.failure({'kind': 'device', 'message': 'in English for the command line',
                             'device': 'cuda', 'available': ['cpu']}, 1, '', config)
    assert text == ("Neural Style failed: device 'cuda' is not available here (available: cpu)."
                    '\nIn the Neural Style dialog: set "Device" to CPU.')


def test_the_engine_sends_the_fields_the_plug_in_words_its_errors_from():
    from nst_core import device, errors
    from nst_core.weights.base import WeightsError
    from nst_core.weights.cache import refetch_command
    error = WeightsError('weights file x.pth is corrupted (...)',
                         command=refetch_command('/cache/magenta.pth'))
    fields = errors.details(error)
    assert fields['reason'] == 'weights file x.pth is corrupted (...)' and not fields['after']
    assert fields['command'] == ['weights', 'fetch', 'magenta', '--force']
    # the plug-in words it from those fields as the shell's text reads, with its own python
    config = {'python': '/venv/bin/python'}
    assert messages.failure(dict(fields, kind='weights', message=str(error)), 1, '', config) == (
        'Neural Style failed: %s\nRun the command in a terminal, then try again.'
        % str(error).replace('`python ', '`/venv/bin/python '))
    with pytest.raises(device.DeviceError) as found:
        device.pick('cuda:7' if 'cuda' not in device.available() else 'nonesuch')
    assert errors.classify(found.value)[0] == 'device'
    if found.value.details:
        assert found.value.details == {'device': 'cuda:7', 'available': device.available()}


def test_each_error_kind_is_worded_for_the_dialog():
    config = {'python': '/venv/bin/python'}
    memory = {'kind': 'out_of_memory', 'message': '--fit, fit=True', 'method': 'quality',
              'width': 640, 'height': 640, 'needed_bytes': 0.82 * 1024 ** 3,
              'usable_bytes': 0.75 * 1024 ** 3, 'free_bytes': 0.88 * 1024 ** 3,
              'largest_side': 416}
    text = messages.failure(memory, 1, '', config)
    assert text.startswith('Neural Style: not enough memory. Quality at 640 x 640 px needs about '
                           '0.82 GB, but only 0.75 GB can be used now (85 % of the 0.88 GB free)')
    assert 'tick "Fit to memory" to work at 416 px' in text and 'Output size" to 416' in text
    assert '--fit' not in text
    assert 'Close other programs' in messages.failure(dict(memory, largest_side=0), 1)
    old = messages.failure({'kind': 'out_of_memory', 'message': 'too big'}, 1)
    assert old.startswith('Neural Style failed: too big\nIn the Neural Style dialog: lower')
    assert messages.failure({'kind': 'bad_input', 'message': 'a bad buffer'}, 1, 'log') == \
        'Neural Style failed: a bad buffer'
    text = messages.failure({'kind': 'internal', 'message': 'KeyError: x (a bug)'}, 1, 'tb')
    assert text == "Neural Style failed: KeyError: x (a bug)\n\nLast lines of the worker's log:\ntb"
    assert messages.failure(None, -9, 'tb').startswith(
        'Neural Style failed: the worker stopped unexpectedly (exit code -9) without saying why.')
    assert 'it closed the connection' in messages.failure(None, None)
    # a worker without fields: its message as it is, never taken apart
    assert messages.failure({'kind': 'weights', 'message': 'run `python -m x`'}, 1, '',
                            config) == 'Neural Style failed: run `python -m x`'
    assert messages.failure({'kind': 'device', 'message': 'no such device'}, 1) == \
        'Neural Style failed: no such device.\nIn the Neural Style dialog: set "Device" to CPU.'


def test_the_clients_failures_are_worded_here_as_before():
    import nst_client
    Failure = nst_client.Failure
    said = messages.said
    assert said(Failure('buffer_missing', name='result.rgba', reason='No such file')) == (
        'Neural Style failed: the worker reported result.rgba but it is missing (No such file).')
    assert said(Failure('buffer_size', name='result.rgba', size=5, expected=24, width=2,
                        height=3)) == \
        'Neural Style failed: result.rgba holds 5 bytes, expected 24 (2x3).'
    assert said(Failure('interpreter', python='/venv/bin/python', reason='No such file',
                        config='/me/neural_style.json')) == (
        'Cannot start the worker interpreter /venv/bin/python: No such file.\nRun "python3 '
        'install.py" again, or correct "python" in /me/neural_style.json.')
    assert said(Failure('worker_folder', path='/run/user/1/neural-style')) == (
        'Neural Style cannot use /run/user/1/neural-style for its worker: it must be a folder '
        'of yours that only you can enter (mode 0700). Remove it, or set "keep_alive_seconds" '
        'to 0 in "neural_style.json".')
    stalled = ('Neural Style: the worker sent no progress for 600 s and was stopped; it seemed '
               'stuck. Try again, perhaps with a smaller "Output size". If steps really take '
               'that long on this machine, raise "stall_seconds" in /me/neural_style.json (0 = '
               'no limit).')
    assert said(Failure('stalled', seconds=600, config='/me/neural_style.json',
                        log_tail='')) == stalled
    assert said(Failure('stalled', seconds=600, config='/me/neural_style.json',
                        log_tail='a\nb')) == stalled + "\n\nLast lines of the worker's log:\na\nb"
    assert said(Failure('time_limit', seconds=2.5, config='/me/neural_style.json',
                        log_tail='')) == (
        'Neural Style: the worker ran longer than the time limit of 2.5 s and was stopped. '
        'Choose a smaller "Output size", the Draft preset or the Fast method, or raise '
        '"time_limit_seconds" in /me/neural_style.json (0 = no limit).')
    assert messages.loading() == 'loading the model...'
    # the plug-in's own checks: words made by messages.py, carried as they are
    failure = Failure.said(messages.zero_weights())
    assert said(failure) == str(failure) == messages.zero_weights()
    # a kind from a newer client is still said, if plainly
    assert said(Failure('new_kind', x=1)) == "Neural Style failed: new_kind x=1"


def test_the_client_holds_no_words_for_the_user():
    """Its string constants are protocol, paths and log lines: none is a sentence a GIMP
    user reads (those are messages.py's, wrapped for translation)."""
    tree = ast.parse((ROOT / 'nst_client.py').read_text())
    texts = [node.value for node in ast.walk(tree)
             if isinstance(node, ast.Constant) and isinstance(node.value, str)]
    assert not [t for t in texts if 'Neural Style' in t or 'python3 install.py' in t
                or 'loading the model' in t]


def test_a_bad_trained_model_file_asks_for_another_file_not_a_weights_command():
    config = {'python': '/venv/bin/python'}
    error = {'kind': 'weights', 'message': 'm.pth is not a fast-neural-style model: it lacks '
             'conv1.conv2d.weight; give a model written by `python -m nst_core train`, ...'}
    text = messages.failure(error, 1, '', config, 'trained')
    assert text == ('Neural Style failed: %s\nIn the Neural Style dialog: choose another '
                    '"Trained model" file.' % error['message'])
    assert 'Run the command' not in text


def test_the_size_and_preview_notes_say_what_the_run_will_do():
    assert messages.size_note('quality', 0, 640, 480) == \
        "Works at the layer's own size, 640 x 480 px."
    assert messages.size_note('quality', 320, 640, 480) == \
        "Works at 320 x 240 px, then scales to the layer's 640 x 480."
    assert messages.size_note('quality', 900, 640, 480).endswith('(sizes above it add nothing).')
    assert messages.size_note('fast', 320, 640, 480) == \
        "Fast works at the layer's own size, 640 x 480 px."
    assert messages.preview_note('trained', False, 30) == \
        'Tick Preview to see the trained model on the layer.'
    assert messages.preview_note('quality', True, 30, 'step 3/30').endswith('Painting... step 3/30')


def test_the_install_settings_are_checked_and_the_time_limits_filled_in(tmp_path, monkeypatch):
    path = tmp_path / 'neural_style.json'
    monkeypatch.setenv(settings.CONFIG_ENV, str(path))
    with pytest.raises(settings.Failure, match='is not set up'):
        settings.load()
    path.write_text('{"version": 1, "python": "/venv/bin/python", "stall_seconds": -1}')
    with pytest.raises(settings.Failure, match='"stall_seconds" .* must be a number'):
        settings.load()
    path.write_text('{"version": 1, "python": "/venv/bin/python"}')
    loaded = settings.load()
    assert loaded['_path'] == str(path) and loaded['keep_alive_seconds'] == 600


def test_the_dialog_says_where_the_work_runs_and_the_client_gets_the_remote(tmp_path,
                                                                           monkeypatch):
    """install.py --remote's keys: checked, said under Device, and handed to the client as
    they are (job.stylize and the preview give nst_client the dict settings.load returns)."""
    import nst_client
    path = tmp_path / 'neural_style.json'
    monkeypatch.setenv(settings.CONFIG_ENV, str(path))
    path.write_text('{"version": 1, "python": "/venv/bin/python"}')
    assert messages.runs_on(settings.load()) == 'Runs on: this computer'
    url = 'ssh://me@gpu-box:2222/home/me/.local/share/neural-style/venv/bin/python'
    remote = {'version': 1, 'remote': url, 'remote_label': 'gpu-box: NVIDIA H200',
              'ssh_command': ['ssh', '-F', '/home/me/my config']}     # no local interpreter
    path.write_text(json.dumps(remote))
    loaded = settings.load()
    assert messages.runs_on(loaded) == 'Runs on: gpu-box: NVIDIA H200'
    assert {k: loaded[k] for k in remote} == remote
    argv = nst_client.remote_of(loaded).argv(loaded, 'remote', '--probe')
    assert argv[:3] == ['ssh', '-F', '/home/me/my config'] and argv[-2:] == [
        'gpu-box', url.split(':2222')[1] + ' -m nst_core remote --probe']
    path.write_text(json.dumps(dict(remote, remote_label=None)))
    assert messages.runs_on(settings.load()) == 'Runs on: gpu-box'
    path.write_text(json.dumps(dict(remote, remote='')))      # --local: this computer again
    with pytest.raises(settings.Failure, match='naming "python", or "remote"'):
        settings.load()
    for bad, said in (({'remote': 'gpu-box'}, '"remote" .* must name the worker as ssh://'),
                      ({'ssh_command': 'ssh -F x'}, '"ssh_command" .* must be a list of words'),
                      ({'ssh_command': []}, '"ssh_command" .* must be a list of words')):
        path.write_text(json.dumps(dict(remote, **bad)))
        with pytest.raises(settings.Failure, match=said):
            settings.load()
    device = next(o for o in options.OPTIONS if o[0] == 'device')
    assert "that computer's devices" in device[3]
    assert options.DIALOG_ORDER.index('runs-on-note') == options.DIALOG_ORDER.index('device') + 1


class Config:
    """GIMP's procedure config, as far as options and settings read it."""

    def __init__(self, **values):
        self.values = {name.replace('_', '-'): value for name, value in values.items()}

    def get_property(self, name):
        return self.values.get(name)


def test_the_job_options_come_from_the_arguments_and_the_install():
    defaults = {name.replace('-', '_'): default for name, _, _, _, default, _, _
                in options.OPTIONS}
    config = Config(**dict(defaults, method='fast', size=300, style_layer='painting',
                           style_weight_2=1.0, style_layer_2='second', style_weight_3=0.0,
                           style_layer_3='third', preview=False, style_region='channel',
                           style_channel='sky', style_region_2='rest',
                           style_region_3='everywhere'))
    args, styles = options.arguments(config)
    assert styles == [('painting', 1.0), ('second', 1.0)] and args['trained_model'] is None
    job = options.job_options({'device': 'cpu', 'cache_dir': '/w', 'model': ''}, args)
    assert job['size'] == 0 and job['device'] == 'cpu' and job['cache_dir'] == '/w'
    assert 'model' not in job and 'trained_model' not in job
    text = settings.last_values_text(config)
    assert '(method "fast")\n' in text and '(fit no)\n' in text and '(size 300)\n' in text
    # the regions' choices are kept as GIMP keeps them, their channels (items) are not
    assert '(style-region "channel")\n' in text and '(style-region-2 "rest")\n' in text
    assert 'style-channel' not in text


def test_the_probe_does_nothing_without_the_test_environment(tmp_path, monkeypatch):
    monkeypatch.delenv(probe.ENV, raising=False)
    probe.log('nothing')
    probe.kill('before-insert')                  # no kill-at: it returns
    assert probe.cancel_after() == 0 and not probe.enabled()
    monkeypatch.setenv(probe.ENV, str(tmp_path))
    (tmp_path / 'cancel-after').write_text('3\n')
    probe.log('a line')
    assert probe.cancel_after() == 3 and probe.enabled()
    assert (tmp_path / 'plugin.log').read_text() == 'a line\n'


def _imports(path):
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split('.')[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module.split('.')[0])
    return imported


def test_plugin_imports_only_the_standard_library_gi_and_each_other():
    files = sorted(p for p in PLUGIN.parent.rglob('*') if p.is_file()
                   and '__pycache__' not in p.parts and p.suffix not in ('.html', '.xml'))
    assert files and all(p.suffix == '.py' for p in files), files
    shared = {'nst_protocol', 'nst_client'}     # install.py copies them beside the plug-in
    own = {p.stem for p in files} | shared
    allowed = set(sys.stdlib_module_names) | {'gi'} | own
    for path in files + [ROOT / (name + '.py') for name in shared]:
        assert _imports(path) <= allowed, (path.name, _imports(path) - allowed)
    assert _imports(ROOT / 'install.py') <= set(sys.stdlib_module_names) | shared


def test_no_product_module_but_the_probe_knows_the_test_environment():
    product = [ROOT / 'install.py', ROOT / 'nst_protocol.py', ROOT / 'nst_client.py'] + \
        sorted((ROOT / 'nst_core').rglob('*.py')) + sorted(PLUGIN.parent.rglob('*.py'))
    # the environment the tests and tests/gimp/run.sh set (NEURAL_STYLE_TEST_DIR, NST_TEST_VENV,
    # NS_KEEP_ALIVE, ...), never the product's own settings (NST_CORE_CACHE, NEURAL_STYLE_CONFIG)
    names = re.compile(r'\b(NEURAL_STYLE_TEST|NST_TEST|NS_[A-Z])')
    for path in product:
        if path != PLUGIN.parent / 'probe.py':
            assert not names.search(path.read_text()), path


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


@pytest.mark.slow
@pytest.mark.gimp
@pytest.mark.ssh
def test_the_worker_over_ssh_in_real_gimp():
    """A Quality and a Fast run through ssh to 127.0.0.1 (the host is the GPU box: its sshd,
    this interpreter's engine) each add one layer that one Ctrl+Z removes; GIMP's Cancel
    (the plug-in killed) ends the remote job within a second and the box's warm worker
    stays (tests/gimp/remote_test.py, remote_host.py)."""
    import sshd
    from conftest import cached_weights
    from nst_core import weights
    reason = sshd.MISSING or _cannot_run_gimp()
    if reason:
        pytest.skip(reason)
    # the box's engine is this one: its weights, in the cache the ssh session's engine reads
    # (remote_host.py passes NST_CORE_CACHE on)
    cached_weights('magenta', weights.VGG_AUTO_ORDER[0])
    run_harness('the worker over SSH in GIMP', NS_REMOTE_PYTHON=sys.executable,
                GUI_SCRIPT=str(RUN.parent / 'remote_test.py'), BATCH='0')


# ---- styles by region (issue 24): the arguments, the plan, the masks the job carries -------

import style_regions  # noqa: E402


def _mnemonic(label):
    assert label.count('_') == 1, label
    return label[label.index('_') + 1].lower()


def test_the_regions_arguments_sit_by_their_styles_and_take_letters_of_their_own():
    sc = style_choice()
    layers = [layer for layer, _weight in options.STYLE_SLOTS]
    assert sc.SLOTS == tuple(layers)
    assert sc.REGION_ARGS == tuple(options.REGION_SLOTS[layer][0] for layer in layers)
    assert sc.CHANNEL_SLOTS == tuple(options.REGION_SLOTS[layer][1] for layer in layers)
    assert sc.IN_CHANNEL == options.IN_CHANNEL
    assert [value for value, _text in options.REGION_CHOICES] == ['everywhere', 'channel',
                                                                  'rest']
    # beside each style layer: the first in the dialog's order, the others folded
    assert options.DIALOG_ORDER[:3] == ['style-layer', 'style-region', 'style-channel']
    assert options.more_styles_box() == [
        'style-layer-2', 'style-weight-2', 'style-region-2', 'style-channel-2',
        'style-layer-3', 'style-weight-3', 'style-region-3', 'style-channel-3']
    assert set(options.PREVIEW_OPTIONS) >= {name for pair in options.REGION_SLOTS.values()
                                            for name in pair}
    # every argument's label has a letter of its own (GIMP warns of duplicates and of labels
    # without one), none the dialog's buttons' (r c o l s), the preview's (p) or "_Blend"'s
    labels = [o[2] for o in options.OPTIONS] + list(options.STYLE_LABELS.values()) + \
        [options.MODEL_LABEL] + list(options.REGION_LABELS.values())
    keys = [_mnemonic(label) for label in labels]
    assert len(keys) == len(set(keys)), sorted(keys)
    assert not set(keys) & set('rcolspb')


def test_the_regions_are_read_for_the_styles_used_and_trained_takes_the_first():
    config = Config(method='fast', style_layer='sky painting', style_region='channel',
                    style_channel='sky', style_layer_2='town painting', style_weight_2=1.0,
                    style_region_2='rest', style_channel_2=None, style_layer_3='unused',
                    style_weight_3=0.0, style_region_3='channel', style_channel_3=None)
    assert options.regions(config) == [(1, 'channel', 'sky'), (2, 'rest', None)]
    assert [layer for layer, _w in options.arguments(config)[1]] == ['sky painting',
                                                                     'town painting']
    trained = Config(method='trained', style_region='channel', style_channel='sky',
                     style_layer='sky painting', style_region_2='rest')
    assert options.regions(trained) == [(1, 'channel', 'sky')]


def test_a_region_plan_is_refused_when_it_could_not_be_painted():
    plan = style_regions.plan([(1, 'channel', 'sky'), (2, 'rest', None),
                               (3, 'channel', 'river')])
    assert [(r.slot, r.kind, r.channel, r.others) for r in plan] == [
        (1, 'channel', 'sky', ()), (2, 'rest', None, (0, 2)), (3, 'channel', 'river', ())]
    for regions, problem, slot, other in (
            ([(1, 'channel', None)], 'no_channel', 1, None),
            ([(1, 'everywhere', None), (2, 'rest', None)], 'rest_of_everything', 2, 1),
            ([(1, 'channel', 'sky'), (2, 'everywhere', None), (3, 'rest', None)],
             'rest_of_everything', 3, 2),
            ([(1, 'rest', None)], 'rest_of_nothing', 1, None),          # e.g. Trained model
            ([(1, 'rest', None), (2, 'rest', None)], 'rest_of_nothing', 1, None)):
        with pytest.raises(style_regions.RegionError) as found:
            style_regions.plan(regions)
        assert (found.value.problem, found.value.slot, found.value.other) == \
            (problem, slot, other), regions
    # and each is worded for the user, naming the style
    assert messages.region_no_channel(2).startswith('Style 2 is to paint "In the channel", but')
    assert 'style 1 paints everywhere' in messages.region_rest(2, 1)
    assert 'no other style paints "In the channel"' in messages.region_rest(1)
    assert '"sky"' in messages.repeat_channel_gone('"sky"')


def test_everywhere_else_is_what_the_channels_leave_and_a_region_missing_the_photo_is_found():
    sky = bytes([255, 255, 128, 0, 0, 0])                  # a soft edge in the middle
    river = bytes([0, 0, 0, 0, 200, 255])
    read = {'sky': sky, 'river': river}.get
    two = style_regions.plan([(1, 'channel', 'sky'), (2, 'rest', None)])
    assert style_regions.masks(two, read) == [sky, bytes([0, 0, 127, 255, 255, 255])]
    three = style_regions.plan([(1, 'channel', 'sky'), (2, 'channel', 'river'),
                                (3, 'rest', None)])
    # what the other channels leave, summed, at least 0 (as the engine's own 'rest')
    assert style_regions.masks(three, read)[2] == bytes([0, 0, 127, 255, 55, 0])
    # everywhere for every style: no masks at all (the job as before regions)
    assert style_regions.masks(style_regions.plan([(1, 'everywhere', None)]), read) is None
    # a channel that misses the photo, or channels that cover all of it
    dark = style_regions.plan([(1, 'channel', 'dark'), (2, 'rest', None)])
    missed = style_regions.nowhere(dark, style_regions.masks(dark, {'dark': bytes(6)}.get))
    assert (missed.slot, missed.channel) == (1, 'dark')
    full = style_regions.plan([(1, 'channel', 'all'), (2, 'rest', None)])
    missed = style_regions.nowhere(full, style_regions.masks(full, {'all': b'\xff' * 6}.get))
    assert (missed.slot, missed.kind) == (2, 'rest')
    assert style_regions.nowhere(two, style_regions.masks(two, read)) is None
    assert 'covers none of the layer "photo"' in messages.region_nowhere(1, 'dark', 'photo')
    assert "The other styles' channels cover all" in messages.region_nowhere(2, None, 'photo')


def test_the_remembered_channels_read_back_beside_the_style_layers():
    sc = style_choice()
    image = sc.describe_image(2, '/photos/tubingen.xcf', 'tubingen.xcf')
    sky = sc.channel_record(40, 7, 'sky', image)
    styles = {'style-layer': None, 'style-layer-2': None, 'style-layer-3': None}
    text = sc.encode(styles, {'style-channel': sky, 'style-channel-2': None})
    assert sc.decode(text) == styles
    assert sc.decode_channels(text) == {'style-channel': sky, 'style-channel-2': None}
    assert sc.decode_channels(sc.encode(styles)) == {}          # kept before regions
    assert sc.decode_channels(text.replace('"tattoo": 7', '"tattoo": "7"')) == {
        'style-channel-2': None}                                  # a bad record is dropped
    assert sc.same_image(image, 2, None) and sc.same_image(image, 9, '/photos/tubingen.xcf')
    assert not sc.same_image(image, 9, '/photos/other.xcf') and not sc.same_image(
        sc.describe_image(2, None, 'x'), 9, None)


def test_the_masks_the_plug_in_writes_reach_stylize_and_travel_to_a_remote(tmp_path):
    """The plug-in's JobFolder writes the plan's masks as the protocol's mask buffers; the
    worker reads them into stylize(), which refuses a mask that says nowhere (proof that it
    got them); a remote worker is sent every one of them."""
    import io
    import threading
    import nst_client
    import nst_protocol
    import torch
    from conftest import scene
    from nst_core import fast
    from nst_core.loaded import LoadedModels
    from nst_core.models.arbitrary_style import ArbitraryStyleNet
    from nst_core.reporting import Reporter
    from nst_core.worker import execute_job
    torch.manual_seed(0)
    models = LoadedModels()
    models.get(fast.network_key('auto', None), ArbitraryStyleNet)
    w, h = 32, 24
    content = scene(w, h).convert('RGBA').tobytes()
    painting = scene(20, 20).convert('RGBA').tobytes()
    plan = style_regions.plan([(1, 'channel', 'sky'), (2, 'rest', None)])

    def run(sky):
        masks = style_regions.masks(plan, {'sky': sky}.get)
        with nst_client.JobFolder({'python': sys.executable}) as folder:
            job_path = folder.write_job(
                folder.buffer('content.rgba', w, h, content),
                [folder.buffer('style%d.rgba' % i, 20, 20, painting) for i in range(2)],
                {'method': 'fast', 'device': 'cpu'},
                [folder.mask('mask%d.grey' % i, w, h, m) for i, m in enumerate(masks)])
            job = nst_protocol.read_job(job_path)
            with open(job_path) as f:
                sent = nst_client.job_files(json.load(f))
            rest = nst_protocol.read_buffer(job.style_masks[1])
            events = io.StringIO()
            code = execute_job(job_path, Reporter(json_events=True, events=events),
                               threading.Event(), models)
            return job, sent, rest, code, events.getvalue()

    job, sent, rest, code, events = run(bytes([255] * (w * h // 2) + [0] * (w * h // 2)))
    assert code == nst_protocol.EXIT_OK, events
    assert [(m.width, m.height, m.bytes_per_pixel) for m in job.style_masks] == [(w, h, 1)] * 2
    assert rest == bytes(w * h // 2) + b'\xff' * (w * h // 2)
    assert sorted(sent) == sorted(os.path.basename(b.path) for b in job.buffers())
    assert 'mask0.grey' in sent and 'mask1.grey' in sent
    # all sky: the rest is nowhere, and the engine says so (the plug-in refuses it first)
    job, sent, rest, code, events = run(b'\xff' * (w * h))
    assert code != nst_protocol.EXIT_OK and 'black everywhere' in events, events
