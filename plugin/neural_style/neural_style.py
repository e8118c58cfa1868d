#!/usr/bin/env python3
"""Neural Style for GIMP 3: Filters > Artistic > Neural Style...

Runs inside GIMP's own Python, so it uses the standard library and gi only. The picture is
made by the nst_core worker, started with the interpreter named in neural_style.json (written
by install.py): this file reads the layers with Gegl, writes a job (docs/protocol.md) into a
private temporary folder, turns the worker's events into GIMP's progress bar, and inserts the
result as a new layer in one undo step.

Cancel: GIMP's progress Cancel button does not call back into a plug-in; GIMP asks the
plug-in to quit and then kills it with SIGKILL, and kills its whole process group if the
plug-in has one of its own (gimp_plug_in_close). So the plug-in makes itself a process group
leader and the worker dies with it. Where that is not possible (Windows, or GIMP crashing),
the worker's stdin, a pipe held only by this process, reaches end-of-file, which the worker
takes as a cancel (docs/protocol.md). The job folder of a killed run is removed by its janitor
(_start_janitor: a process in a session of its own that outlives the kill), else by the next
run (_sweep_stale_jobs). A kill can also come while the result is written back: the new layer
is built whole before it is inserted (_insert_result), so the image is either as it was or
holds the complete result. A run whose image is closed meanwhile (Presence) stops its worker
and ends quietly.

The dialog is GIMP's GimpUi.ProcedureDialog, generated from the procedure's arguments
(_declare); _dialog only orders it, makes sliders, greys out what Fast does not use, and makes
GIMP's layer chooser show the chosen layer (StyleChooser).
"""
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import gi
gi.require_version('Gimp', '3.0')
gi.require_version('Gegl', '0.4')
from gi.repository import Gegl, Gimp, Gio, GLib, GObject  # noqa: E402

PROC_NAME = 'python-fu-neural-style'
HERE = os.path.dirname(os.path.abspath(__file__))
PIXEL_FORMAT = "R'G'B'A u8"          # the protocol's buffers: non-linear sRGB, straight alpha
CONFIG_NAME = 'neural_style.json'
CONFIG_ENV = 'NEURAL_STYLE_CONFIG'
JOB_PREFIX = 'neural-style-'
POLL_SECONDS = 0.1
TERMINATE_GRACE = 2.0                # SIGTERM first, SIGKILL after this many seconds
PROGRESS_INTERVAL = 0.1              # at most this often a progress call into GIMP
STDERR_TAIL_LINES = 15
STALE_JOB_AGE = 24 * 3600            # where a dead owner cannot be detected (Windows)

# Test hook (progress is invisible in batch mode, and batch mode has no Cancel button): with
# NEURAL_STYLE_TEST_DIR=dir set in GIMP's environment, the plug-in mirrors progress, the
# worker's pid and the outcome into dir/plugin.log, and if dir/cancel-after holds N, treats
# the N-th progress event as a press on Cancel. If dir/kill-at names a point of the run
# (_test_kill), the plug-in SIGKILLs itself there as GIMP's Cancel button does. Files, because
# a test script inside GIMP cannot change the environment of plug-ins that GIMP starts.
TEST_DIR_ENV = 'NEURAL_STYLE_TEST_DIR'

# The options, named as nst_core.stylize()'s keyword arguments with dashes for GIMP, with the
# same defaults and choices (tests/test_gimp.py compares this table with stylize()).
# (gimp name, kind, label, help, default, min, max) ; for 'choice', min is a list of
# (value, label) and max is None; for 'bool' both are None. The labels carry their mnemonic
# (the underlined letter, Alt+letter in the dialog), as GIMP's own plug-ins' do; none may take
# the letters of the dialog's buttons (Reset, Cancel, OK, Load/Save Settings: r c o l s) or
# of Reset's two choices (Initial Values, Factory Defaults: i f).
OPTIONS = [
    ('method', 'choice', '_Method',
     'Quality: optimise the picture (slow, best). Fast: one pass of a pretrained network, '
     "at the layer's own size. Trained model: one pass of a network trained for one style "
     '(the "Trained model" file; no style layer needed).',
     'quality', [('quality', 'Quality'), ('fast', 'Fast'), ('trained', 'Trained model')],
     None),
    ('strength', 'double', 'Stre_ngth', 'How much style: 0 keeps the content, 1 is full style.',
     1.0, 0.0, 1.0),
    ('style-scale', 'double', 'Style sc_ale',
     "Size of the style's strokes relative to the content.", 1.0, 0.1, 8.0),
    ('preserve-colors', 'choice', '_Preserve color',
     "Keep the content's colors: luminance transfers only brightness; histogram matches the "
     "style's colors to the content's first.",
     'none', [('none', 'No'), ('luminance', 'Luminance only'),
              ('histogram', 'Match histogram')], None),
    ('size', 'int', 'Output si_ze (px)',
     'Quality: the working size of the longest side in pixels (0 = the layer\'s own size; '
     'larger than the layer is not used); the result is scaled to the layer. Fast always '
     'works at the layer\'s own size.', 512, 0, 16384),
    ('fit', 'bool', 'Fi_t to memory',
     'When the output size needs more memory than is free, work at the largest size that '
     'fits instead of refusing.', False, None, None),
    ('preset', 'choice', '_Quality preset',
     'Number of optimisation steps for the Quality method (Draft, Normal, Best).',
     'normal', [('draft', 'Draft'), ('normal', 'Normal'), ('best', 'Best')], None),
    ('device', 'choice', '_Device',
     'Where to compute: auto uses the device from the installer\'s configuration '
     '(by default a GPU when there is one).',
     'auto', [('auto', 'Auto'), ('cpu', 'CPU'), ('cuda', 'CUDA (NVIDIA GPU)'),
              ('mps', 'MPS (Apple GPU)')], None),
    ('seed', 'int', 'S_eed', 'Random seed: the same seed gives the same picture.',
     0, 0, 2147483647),
]
STYLE_SLOTS = [('style-layer', None), ('style-layer-2', 'style-weight-2'),
               ('style-layer-3', 'style-weight-3')]
STYLE_LABELS = {'style-layer': 'St_yle layer', 'style-layer-2': 'Style layer _2',
                'style-weight-2': '_Weight of style 2', 'style-layer-3': 'Style layer _3',
                'style-weight-3': 'Wei_ght of style 3'}
# The dialog's order: what to paint with first, the method and what only Quality uses next to
# it, then the look, then where and how to compute.
DIALOG_ORDER = ['style-layer', 'method', 'trained-model', 'preset', 'size', 'size-note',
                'strength', 'style-scale', 'preserve-colors', 'fit', 'device', 'seed',
                'more-styles-frame']
QUALITY_ONLY = ('preset', 'size')
# A network trained for one style (python -m nst_core train, or pytorch/examples' candy.pth
# ...): the file is the style, so the style layers are not used with it.
MODEL_ARG = 'trained-model'
MODEL_LABEL = 'Trained model (.pt_h)'
SLIDERS = ('strength', 'style-scale', 'style-weight-2', 'style-weight-3')


def _load_protocol():
    """nst_core/protocol.py, copied beside this file by install.py; in a checkout, the original."""
    try:
        import nst_protocol
        return nst_protocol
    except ImportError:
        import importlib.util
        path = os.path.join(HERE, os.pardir, os.pardir, 'nst_core', 'protocol.py')
        spec = importlib.util.spec_from_file_location('nst_protocol', path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module


protocol = _load_protocol()


class Failure(Exception):
    """The run failed; the message is for the user: what went wrong and what to do."""


class Cancelled(Exception):
    pass


# ---------------------------------------------------------------- small helpers

def _test_log(message):
    folder = os.environ.get(TEST_DIR_ENV)
    if folder:
        with open(os.path.join(folder, 'plugin.log'), 'a', encoding='utf-8') as f:
            f.write(message + '\n')


def _test_cancel_after():
    folder = os.environ.get(TEST_DIR_ENV)
    try:
        with open(os.path.join(folder, 'cancel-after'), encoding='utf-8') as f:
            return int(f.read().strip() or 0)
    except (TypeError, OSError, ValueError):
        return 0


_kill_point = []        # dir/kill-at, once read


def _test_kill_point():
    """dir/kill-at, read once per run: _test_kill is called for every worker event."""
    if not _kill_point:
        try:
            with open(os.path.join(os.environ[TEST_DIR_ENV], 'kill-at'),
                      encoding='utf-8') as f:
                _kill_point.append(f.read().strip())
        except (KeyError, OSError):
            _kill_point.append(None)
    return _kill_point[0]


def _test_kill(point):
    """Die at this point exactly as GIMP's Cancel kills a plug-in (gimp_plug_in_close: SIGKILL
    to the plug-in's process group when it leads one of its own, else to the plug-in), if
    dir/kill-at names it. Points: reading, worker-started, start (the worker's first event:
    it is loading torch and the model), progress N (the N-th progress event), writing-back,
    before-insert, after-insert."""
    if point != _test_kill_point():
        return
    _test_log('killing myself at %s' % point)
    pid = os.getpid()
    if os.getpgid(0) != os.getpgid(os.getppid()):     # GIMP, our parent, is not in our group
        os.kill(-pid, signal.SIGKILL)
    os.kill(pid, signal.SIGKILL)


def _config():
    path = os.environ.get(CONFIG_ENV) or os.path.join(HERE, CONFIG_NAME)
    try:
        with open(path, encoding='utf-8') as f:
            config = json.load(f)
    except FileNotFoundError:
        raise Failure('Neural Style is not set up: %s is missing.\nRun "python3 install.py" '
                      'from the Neural Style folder, then restart GIMP.' % path) from None
    except (OSError, ValueError) as e:
        raise Failure('Cannot read the Neural Style configuration %s: %s\nRun "python3 '
                      'install.py" again to rewrite it.' % (path, e)) from None
    if not isinstance(config, dict) or config.get('version') != 1 \
            or not isinstance(config.get('python'), str):
        raise Failure('The Neural Style configuration %s is not one this plug-in understands '
                      '(expected version 1 naming "python").\nRun "python3 install.py" again.'
                      % path)
    for key, default in protocol.TIME_LIMITS.items():    # why these: nst_protocol.py
        value = config.setdefault(key, default)
        if not protocol.is_seconds(value):
            raise Failure('"%s" in the Neural Style configuration %s must be a number of '
                          'seconds (0 = no limit), not %r.\nCorrect it, or run "python3 '
                          'install.py" again.' % (key, path, value))
    config['_path'] = path
    return config


def _read_pixels(drawable):
    w, h = drawable.get_width(), drawable.get_height()
    data = drawable.get_buffer().get(Gegl.Rectangle.new(0, 0, w, h), 1.0, PIXEL_FORMAT,
                                     Gegl.AbyssPolicy.CLAMP)
    return w, h, bytes(data)


def _owner_gone(entry):
    """True for the job folder of a plug-in process that no longer runs."""
    try:
        pid = int(entry.name[len(JOB_PREFIX):].split('-', 1)[0])
    except ValueError:
        return False
    if pid == os.getpid():
        return False
    if os.name != 'posix':          # os.kill(pid, 0) would terminate the process on Windows
        return time.time() - entry.stat().st_mtime > STALE_JOB_AGE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def _sweep_stale_jobs():
    """Remove job folders left behind by runs that GIMP killed (its Cancel kills the plug-in)."""
    try:
        entries = list(os.scandir(tempfile.gettempdir()))
    except OSError:
        return
    for entry in entries:
        try:
            mine = os.name != 'posix' or entry.stat().st_uid == os.getuid()
            if entry.name.startswith(JOB_PREFIX) and entry.is_dir(follow_symlinks=False) \
                    and mine and _owner_gone(entry):
                shutil.rmtree(entry.path, ignore_errors=True)
        except OSError:
            continue


def _own_process_group():
    """Lead a process group, so that GIMP's Cancel (kill(-pid, SIGKILL)) takes the worker too."""
    if hasattr(os, 'setpgid'):
        try:
            os.setpgid(0, 0)
        except OSError:        # already a session leader: GIMP then kills us alone
            pass


def _tail(path, lines=STDERR_TAIL_LINES):
    try:
        with open(path, encoding='utf-8', errors='replace') as f:
            text = f.read()[-20000:]
    except OSError:
        return ''
    return '\n'.join(text.strip().splitlines()[-lines:])


# ---------------------------------------------------------------- the job

def _options(config, args):
    device = args['device']
    if device == 'auto':
        device = config.get('device') or 'auto'
    # Fast works at the layer's own size (tiled when large): at a smaller size it is no faster
    # in GIMP (torch's start-up dominates) and only softer once enlarged to the layer.
    size = args['size'] if args['method'] == 'quality' else 0
    options = {'method': args['method'], 'strength': args['strength'],
               'style_scale': args['style_scale'], 'preserve_colors': args['preserve_colors'],
               'size': size, 'fit': args['fit'], 'preset': args['preset'],
               'device': device, 'seed': args['seed']}
    if args['method'] == 'trained':
        options['trained_model'] = args['trained_model']
    for key in protocol.WORKER_OPTIONS:
        if config.get(key):
            options[key] = config[key]
    return options


def _write_job(job_dir, content, styles, options):
    """Write the buffers and job.json; styles: [(drawable, weight)]."""
    def save(name, drawable, weight=1.0):
        w, h, data = _read_pixels(drawable)
        with open(os.path.join(job_dir, name), 'wb') as f:
            f.write(data)
        return protocol.Buffer(name, w, h, weight)

    content_buffer = save('content.rgba', content)
    _test_kill('reading')
    job = protocol.Job(content_buffer,
                       [save('style%d.rgba' % i, d, wt) for i, (d, wt) in enumerate(styles)],
                       'result.rgba', options)
    return protocol.write_job(job, job_dir)


def _start_worker(config, job_path, err_file):
    env = dict(os.environ)
    if config.get('cache_dir'):
        env['NST_CORE_CACHE'] = config['cache_dir']
    for name in ('PYTHONHOME', 'PYTHONPATH'):     # GIMP's own Python settings, not the venv's
        env.pop(name, None)
    cmd = [config['python'], '-m', 'nst_core', 'worker', job_path]
    try:
        return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=err_file, env=env, cwd=os.path.dirname(job_path),
                                creationflags=getattr(subprocess, 'CREATE_NO_WINDOW', 0))
    except OSError as e:
        raise Failure('Cannot start the worker interpreter %s: %s.\nRun "python3 install.py" '
                      'again, or correct "python" in %s.'
                      % (config['python'], e.strerror or e, config['_path'])) from None


# The janitor removes the job folder when the plug-in is gone, however it went: GIMP's Cancel
# SIGKILLs the plug-in and its process group (the worker with it), so no code of either runs
# afterwards. It reads its stdin, a pipe only the plug-in holds, until end-of-file, and lives
# in a session of its own, out of the reach of that kill. Standard library only, run with -I
# -S (no site, no user paths); the run does not wait for it to start.
JANITOR = r"""
import os, shutil, sys, time
folder = sys.argv[1]
try:
    while os.read(0, 4096):
        pass
except OSError:
    pass
for _ in range(100):                # a worker stopping on its closed stdin may still write
    shutil.rmtree(folder, ignore_errors=True)
    if not os.path.exists(folder):
        break
    time.sleep(0.05)
"""


def _janitor_pythons(config):
    """GIMP's own Python first: the config's may be a wrapper that expects the worker's
    arguments (the tests' are); then the worker's."""
    own = sys.executable
    if own and os.path.basename(own).lower().startswith('python'):
        yield own
    if config.get('python'):
        yield config['python']


def _start_janitor(config, job_dir):
    for python in _janitor_pythons(config):
        try:
            return subprocess.Popen([python, '-I', '-S', '-c', JANITOR, job_dir],
                                    stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, close_fds=True,
                                    start_new_session=(os.name == 'posix'),
                                    creationflags=getattr(subprocess, 'CREATE_NO_WINDOW', 0))
        except OSError:
            continue
    return None                      # then _sweep_stale_jobs cleans up after a kill


def _end_janitor(janitor):
    if janitor is None:
        return
    try:
        janitor.stdin.close()
        janitor.wait(2)
    except (OSError, subprocess.TimeoutExpired):
        pass


def _pump(stream, lines):
    """Reader thread: the main loop must never block on the worker's stdout."""
    for line in iter(stream.readline, b''):
        lines.put(line)
    lines.put(None)


def _descendants(pid):
    """The processes the worker started, from /proc (Linux; elsewhere none are known)."""
    children = {}
    try:
        names = [name for name in os.listdir('/proc') if name.isdigit()]
    except OSError:
        return []
    for name in names:
        try:
            with open('/proc/%s/stat' % name, 'rb') as f:
                ppid = int(f.read().rsplit(b')', 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _stop(proc, grace=TERMINATE_GRACE):
    """Stop the worker: close its stdin, SIGTERM, SIGKILL if it has not gone in `grace`
    seconds (at once for 0); then SIGKILL what it started (a stuck worker's children would
    outlive it otherwise)."""
    family = _descendants(proc.pid)      # now: once the worker dies they are re-parented
    try:
        proc.stdin.close()
    except OSError:
        pass
    if proc.poll() is None:
        if grace:
            proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for pid in family:
        try:
            os.kill(pid, signal.SIGKILL)   # family is empty where SIGKILL does not exist
        except OSError:
            pass


class Watchdog:
    """The config's time limits ("stall_seconds", "time_limit_seconds"; 0 = none)."""

    def __init__(self, config):
        self.stall, self.limit = config['stall_seconds'], config['time_limit_seconds']
        self.path = config['_path']
        self.start = self.last = time.monotonic()

    def heard(self):
        self.last = time.monotonic()

    def overrun(self):
        """None while within the limits, else the message for the user."""
        now = time.monotonic()
        if self.stall and now - self.last > self.stall:
            return ('Neural Style: the worker sent no progress for %g s and was stopped; it '
                    'seemed stuck. Try again, perhaps with a smaller "Output size". If steps '
                    'really take that long on this machine, raise "stall_seconds" in %s '
                    '(0 = no limit).' % (self.stall, self.path))
        if self.limit and now - self.start > self.limit:
            return ('Neural Style: the worker ran longer than the time limit of %g s and was '
                    'stopped. Choose a smaller "Output size", the Draft preset or the Fast '
                    'method, or raise "time_limit_seconds" in %s (0 = no limit).'
                    % (self.limit, self.path))
        return None


class ProgressBar:
    """Worker events -> GIMP's progress bar, throttled, with stage text and ETA."""

    def __init__(self, cancel_after):
        self.last = 0.0
        self.count = 0
        self.cancel_after = cancel_after
        Gimp.progress_init('Neural Style: starting the worker...')

    def text(self, message):
        Gimp.progress_set_text('Neural Style: %s' % message)
        _test_log('text %s' % message)

    def progress(self, event):
        self.count += 1
        now = time.monotonic()
        if now - self.last >= PROGRESS_INTERVAL or event['fraction'] >= 1.0:
            self.last = now
            parts = [str(event.get('stage') or 'working')]
            if isinstance(event.get('step'), int) and isinstance(event.get('total'), int):
                parts.append('step %d/%d' % (event['step'], event['total']))
            eta = protocol.format_eta(event.get('eta'))
            if eta:
                parts.append(eta)
            Gimp.progress_set_text('Neural Style: ' + ', '.join(parts))
            Gimp.progress_update(float(event['fraction']))
            _test_log('progress %.4f %s' % (event['fraction'], ', '.join(parts)))
        return bool(self.cancel_after) and self.count >= self.cancel_after


class Gone(Exception):
    """The image (or the layer) was closed or deleted during the run: nothing to add it to."""


IMAGE_CHECK_SECONDS = 0.25


class Presence:
    """Whether the image and the layer the result belongs to still exist (a closed image's
    ids turn invalid; any call with them then makes GIMP show an error)."""

    def __init__(self, image, content):
        self.image, self.content = image, content
        self.last = 0.0

    def check(self, force=False):
        now = time.monotonic()
        if not force and now - self.last < IMAGE_CHECK_SECONDS:
            return
        self.last = now
        if not self.image.is_valid() or not self.content.is_valid():
            _test_log('image or layer gone')
            raise Gone()


def _run_worker(config, job_path, bar, presence, method=None):
    """Run one job to the end; return the worker's log lines on success, raise Failure,
    Cancelled or Gone."""
    job_dir = os.path.dirname(job_path)
    err_path = os.path.join(job_dir, 'worker-stderr.txt')
    with open(err_path, 'wb') as err_file:
        proc = _start_worker(config, job_path, err_file)
    _test_log('worker-pid %d' % proc.pid)
    _test_kill('worker-started')
    lines = queue.Queue()
    threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True).start()
    watch = Watchdog(config)
    done, error, logs = None, None, []
    try:
        while True:
            try:
                line = lines.get(timeout=POLL_SECONDS)
            except queue.Empty:
                GLib.MainContext.default().iteration(False)
                line = b''                     # nothing yet
            presence.check()
            overrun = watch.overrun()          # also while events pour in
            if overrun:
                _test_log('time limit: %s' % overrun)
                tail = _tail(err_path)
                raise Failure(overrun + ('\n\nLast lines of the worker\'s log:\n' + tail
                                         if tail else ''))
            if line is None:
                break
            if not line:
                continue
            try:
                event = protocol.parse_event(line.decode('utf-8', 'replace'))
            except protocol.ProtocolError as e:
                error = {'kind': 'internal', 'message': str(e)}
                continue
            watch.heard()                      # an event, not just any output
            kind = event['event']
            _test_kill('progress %d' % (bar.count + 1) if kind == 'progress' else kind)
            if kind == 'progress' and bar.progress(event):
                _test_log('cancel requested')
                raise Cancelled()
            elif kind == 'start':
                bar.text('loading the model...')
            elif kind == 'log' and isinstance(event.get('message'), str):
                logs.append(event['message'])
                bar.text(event['message'])
            elif kind == 'done':
                done = event
            elif kind == 'error':
                error = event
        code = proc.wait()
    except BaseException as e:
        # nobody waits for a run whose image is gone: no grace for its worker
        _stop(proc, 0 if isinstance(e, Gone) else TERMINATE_GRACE)
        _test_log('worker stopped, exit %s' % proc.returncode)
        raise
    finally:
        proc.stdout.close()
    _test_log('worker exit %d' % code)
    if code == 0 and done is not None:
        _test_kill('writing-back')
        return logs
    if code == protocol.EXIT_CANCELLED or (error or {}).get('kind') == 'cancelled':
        raise Cancelled()
    raise Failure(_failure_message(code, error, err_path, config, method))


def _gb(n):
    return ('%.2f GB' if n < 10 * 1024 ** 3 else '%.1f GB') % (n / 1024 ** 3)


def _memory_message(error):
    """The worker's memory refusal in the dialog's words (its own names the command line's)."""
    try:
        method, need, usable, free = (error['method'], float(error['needed_bytes']),
                                      float(error['usable_bytes']), float(error['free_bytes']))
        w, h, side = int(error['width']), int(error['height']), int(error['largest_side'])
    except (KeyError, TypeError, ValueError):         # a worker from before these fields
        return ('Neural Style failed: %s\nIn the Neural Style dialog: lower "Output size", or '
                'tick "Fit to memory" to work at the largest size that fits.' % error['message'])
    text = ('Neural Style: not enough memory. %s at %d x %d px needs about %s, but only %s '
            'can be used now (%d %% of the %s free).' % (
                'Quality' if method == 'quality' else 'Fast', w, h, _gb(need), _gb(usable),
                round(100 * usable / free) if free else 0, _gb(free)))
    if side < 16:
        return text + '\nClose other programs, or choose a smaller layer.'
    ways = ['tick "Fit to memory" to work at %d px, the largest size that fits now (the '
            'result is still scaled to the layer)' % side]
    if method == 'quality':
        ways.append('lower "Output size" to %d or less' % side)
        ways.append('choose the Fast method')
    return text + '\nIn the Neural Style dialog: ' + ', or '.join(ways) + '.'


def _shell_word(text):
    """text as one word of a command line (POSIX sh; cmd.exe on Windows)."""
    if text and all(c.isalnum() or c in '/._-+:=@%,' for c in text):
        return text
    if os.name == 'nt':
        return '"%s"' % text
    return "'%s'" % text.replace("'", "'\\''")


def _weights_message(message, config):
    """The worker's weights error names `python -m nst_core weights ...`, but the python of a
    GIMP user's terminal has no nst_core, and the worker's weights folder is the config's:
    name the worker's interpreter and --cache-dir, so the command works as it is pasted."""
    parts = message.split('`')
    for i in range(1, len(parts), 2):
        if parts[i].startswith('python -m nst_core weights '):
            parts[i] = _shell_word(config['python']) + parts[i][len('python'):]
            if config.get('cache_dir') and '--cache-dir' not in parts[i]:
                parts[i] += ' --cache-dir ' + _shell_word(config['cache_dir'])
    return ('Neural Style failed: %s\nRun the command in a terminal, then try again.'
            % '`'.join(parts))


def _failure_message(code, error, err_path, config=None, method=None):
    if error is not None:
        kind = error.get('kind')
        if kind == 'out_of_memory':
            return _memory_message(error)
        if kind == 'weights' and method == 'trained':
            # nothing is fetched for a trained model: the file chosen is what is wrong
            return ('Neural Style failed: %s\nIn the Neural Style dialog: choose another '
                    '"Trained model" file.' % error['message'])
        if kind == 'weights' and config:
            return _weights_message(error['message'], config)
        if kind == 'device':
            # the worker's own advice names the command line's values ("choose auto or
            # cpu"); Auto may mean the installer's GPU (neural_style.json), so: CPU
            return ('Neural Style failed: %s.\nIn the Neural Style dialog: set "Device" to '
                    'CPU.' % error['message'].split('; choose ')[0])
        text = 'Neural Style failed: %s' % error['message']
        if kind != 'internal':
            return text
    else:
        text = ('Neural Style failed: the worker stopped unexpectedly (exit code %s) without '
                'saying why.' % code)
    tail = _tail(err_path)
    if tail:
        text += '\n\nLast lines of the worker\'s log:\n' + tail
    return text


def _read_result(job_dir, w, h):
    try:
        with open(os.path.join(job_dir, 'result.rgba'), 'rb') as f:
            data = f.read()
    except OSError as e:
        raise Failure('Neural Style failed: the worker reported success but its result is '
                      'missing (%s).' % e.strerror) from None
    if len(data) != w * h * 4:
        raise Failure('Neural Style failed: the result holds %d bytes, expected %d (%dx%d).'
                      % (len(data), w * h * 4, w, h))
    return data


# ---------------------------------------------------------------- the image

def _result_type(image):
    if image.get_base_type() == Gimp.ImageBaseType.GRAY:
        return Gimp.ImageType.GRAYA_IMAGE
    return Gimp.ImageType.RGBA_IMAGE


def _top_level_in(parent, item):
    """item, or the group holding it, that is a child of parent (None: the image's top
    level); None when item is not inside parent."""
    while item is not None:
        up = item.get_parent()
        if (up is None and parent is None) or (up is not None and parent is not None and
                                                up.get_id() == parent.get_id()):
            return item
        item = up
    return None


def _result_place(image, content, styles):
    """(parent, position) for the result: in the photo's group (its mode, mask and offsets
    apply to the result as to the photo), directly above the topmost of the photo and of the
    style layers that share that group (a painting added with File > Open as Layers lands on
    top of the photo and would cover a result put right above the photo). Style layers of
    other images, or outside the photo's group, do not move it."""
    parent = content.get_parent()
    position = image.get_item_position(content)
    for layer in styles:
        if layer.get_image().get_id() != image.get_id():
            continue
        sibling = _top_level_in(parent, layer)
        if sibling is not None:
            position = min(position, image.get_item_position(sibling))
    return parent, position


def _insert_result(image, content, name, data, place):
    """The one change to the image, as one undo step: a new layer at `place` (see
    _result_place), the content layer's size and offsets, masked by the selection if there is
    one.

    The layer is made whole (pixels, offsets, mask) while it belongs to no image, and
    inserting it is the last call: GIMP's Cancel kills the plug-in at any moment, and a kill
    before the insert leaves the image as it was, one after it leaves the complete result
    (tests/gimp/faults_test.py, kill at before-insert / after-insert). Writing the buffer of
    a layer not yet inserted works in GIMP 3.0 and 3.2."""
    w, h = content.get_width(), content.get_height()
    layer = Gimp.Layer.new(image, name, w, h, _result_type(image), 100.0, Gimp.LayerMode.NORMAL)
    _, x, y = content.get_offsets()
    layer.set_offsets(x, y)                  # before the mask: the selection is cut at them
    buf = layer.get_buffer()
    buf.set(Gegl.Rectangle.new(0, 0, w, h), PIXEL_FORMAT, data)
    buf.flush()
    if not Gimp.Selection.is_empty(image):
        layer.add_mask(layer.create_mask(Gimp.AddMaskType.SELECTION))
    _test_kill('before-insert')
    # the group opens only now: a kill before this leaves no open (or empty) undo step
    image.undo_group_start()
    try:
        image.insert_layer(layer, place[0], place[1])
        _test_kill('after-insert')
        layer.update(0, 0, w, h)
    finally:
        image.undo_group_end()
    return layer


def _arguments(config):
    args = {name.replace('-', '_'): config.get_property(name) for name, *_ in OPTIONS}
    model = config.get_property(MODEL_ARG)
    args['trained_model'] = model.get_path() if model is not None else None
    if args['method'] == 'trained':
        return args, []                      # the network is the style
    styles = []
    for layer_name, weight_name in STYLE_SLOTS:
        layer = config.get_property(layer_name)
        weight = config.get_property(weight_name) if weight_name else 1.0
        if layer is not None and weight > 0:
            styles.append((layer, weight))
    return args, styles


def _check_input(drawables, config):
    if len(drawables) != 1 or not isinstance(drawables[0], Gimp.Layer) \
            or isinstance(drawables[0], Gimp.LayerMask):
        raise Failure('Neural Style works on one layer: select exactly one layer (not a '
                      'channel or a layer mask) and try again.')
    if config.get_property('method') == 'trained':
        _check_model(config.get_property(MODEL_ARG))
    elif config.get_property('style-layer') is None:
        raise Failure('Choose a style layer: open or paste the painting whose style you want '
                      'as a layer (in this or any open image) and pick it as "Style layer".')


def _check_model(model):
    """The "Trained model" file must be a file here; the worker checks what is in it."""
    path = model.get_path() if model is not None else None
    if not path:
        raise Failure('Choose a trained model: the Trained model method paints with a network '
                      'trained for one style; pick its file as "Trained model" (a .pth from '
                      '"python -m nst_core train", or a pytorch/examples fast_neural_style '
                      'model such as candy.pth).')
    if not os.path.isfile(path):
        raise Failure('The trained model %s %s: pick another file as "Trained model".'
                      % (path, 'is a folder' if os.path.isdir(path) else 'does not exist'))


def _check_selection(image, content):
    """A selection that misses the layer would give an invisible result: say so instead."""
    if Gimp.Selection.is_empty(image):
        return
    found = content.mask_intersect()
    if not (found[0] if isinstance(found, tuple) else found):
        raise Failure('The selection does not touch the layer "%s": select part of the layer, '
                      'or Select > None to use all of it.' % content.get_name())


def _stylize(image, content, config):
    """Everything after the dialog; returns the new layer."""
    if image.get_base_type() == Gimp.ImageBaseType.INDEXED:
        # the menu greys it out, but scripts can still call the procedure
        raise Failure('Neural Style works on RGB and grayscale images: convert this one with '
                      'Image > Mode > RGB first.')
    settings = _config()
    args, styles = _arguments(config)
    if not styles and args['method'] != 'trained':
        raise Failure('The style weights are all zero: give at least one style a weight.')
    _check_selection(image, content)
    presence = Presence(image, content)
    # named now: the style's image may close meanwhile
    name = 'Neural Style (%s)' % (os.path.basename(args['trained_model']) if not styles
                                  else styles[0][0].get_name())
    w, h = content.get_width(), content.get_height()
    if args['size']:
        args['size'] = min(args['size'], max(w, h))   # no work above the layer's own size
    _sweep_stale_jobs()
    _own_process_group()
    bar = ProgressBar(_test_cancel_after())
    job_dir = tempfile.mkdtemp(prefix='%s%d-' % (JOB_PREFIX, os.getpid()))   # mode 0700
    janitor = _start_janitor(settings, job_dir)
    _test_log('job-dir %s plugin-pid %d' % (job_dir, os.getpid()))
    _test_log('janitor-pid %s' % (janitor.pid if janitor else None))
    clock = Stopwatch()
    try:
        job_path = _write_job(job_dir, content, styles, _options(settings, args))
        clock.lap('write-job')
        _run_worker(settings, job_path, bar, presence, args['method'])
        clock.lap('worker')
        data = _read_result(job_dir, w, h)
    finally:
        shutil.rmtree(job_dir, ignore_errors=True)
        _end_janitor(janitor)
    clock.lap('read-result')
    presence.check(force=True)
    bar.text('inserting the layer')
    place = _result_place(image, content, [layer for layer, _ in styles])
    layer = _insert_result(image, content, name, data, place)
    Gimp.progress_end()
    Gimp.displays_flush()
    clock.lap('insert')
    _test_log('inserted layer %d at %d' % (layer.get_id(), image.get_item_position(layer)))
    return layer


class Stopwatch:
    """Phase times for the test log (bench/bench_plugin_overhead.py reads them)."""

    def __init__(self):
        self.last = time.monotonic()

    def lap(self, phase):
        now = time.monotonic()
        _test_log('timing %s %.3f' % (phase, now - self.last))
        self.last = now


# ---------------------------------------------------------------- the dialog

def _guess_style_layer(image, content):
    """A layer to offer as the style: the topmost other layer of this image (where File > Open
    as Layers puts the painting), else the first layer of another open image."""
    for layer in image.get_layers():
        if layer.get_id() != content.get_id():
            return layer
    for other in Gimp.get_images():
        if other.get_id() != image.get_id() and other.get_layers():
            return other.get_layers()[0]
    return None


def _set_guess(config, image, content):
    if config.get_property('style-layer') is None:
        guess = _guess_style_layer(image, content)
        if guess is not None:
            config.set_property('style-layer', guess)


def _settings_text(config):
    """The options in GIMP's config syntax, as gimp_config_serialize_to_string writes them:
    one "(name value)" line each; booleans yes/no, strings quoted. (Layers are left out, as
    GIMP 3.0 leaves them out: it cannot serialize them.)"""
    lines = []
    for name in [option[0] for option in OPTIONS] + [w for _, w in STYLE_SLOTS[1:]]:
        value = config.get_property(name)
        if isinstance(value, bool):
            text = 'yes' if value else 'no'
        elif isinstance(value, str):
            text = '"%s"' % value.replace('\\', '\\\\').replace('"', '\\"')
        elif isinstance(value, float):
            text = repr(value)
        else:
            text = '%d' % value
        lines.append('(%s %s)\n' % (name, text))
    model = config.get_property(MODEL_ARG)
    if model is not None and model.get_path():
        lines.append('(%s "%s")\n' % (MODEL_ARG, model.get_path().replace('\\', '\\\\')
                                       .replace('"', '\\"')))
    return ''.join(lines)


def _remember(config, image):
    """Keep the values chosen in the dialog as GIMP keeps a successful run's: GIMP saves the
    last values (a parasite on the image, which wins, and its plug-in-settings file) only
    when a run succeeds, so after a failure the dialog came back with an older run's values.
    Saved right after OK, in the places and the format gimp_procedure_config_end_run uses
    (Python cannot call GimpConfig's serializers on a procedure's config object: its class
    does not show the interface to PyGObject)."""
    name = GObject.type_name(config.__gtype__)       # as G_OBJECT_TYPE_NAME in GIMP's code
    text = _settings_text(config)
    try:
        image.attach_parasite(Gimp.Parasite.new(name + '-last', Gimp.PARASITE_PERSISTENT,
                                                list(text.encode() + b'\0')))
        folder = os.path.join(Gimp.directory(), 'plug-in-settings')
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, name + '.last')
        with open(path + '.part', 'w', encoding='utf-8') as f:
            f.write('# settings\n\n' + text + '\n# end of settings\n')
        os.replace(path + '.part', path)
        _test_log('kept the values as %s.last' % name)
    except Exception as e:      # noqa: BLE001 - a convenience: never worth failing the run
        _test_log('could not keep the values: %s' % e)


def _size_note(config, content):
    """What Output size means for this layer, said under it: no silent caps."""
    w, h = content.get_width(), content.get_height()
    side = max(w, h)
    if config.get_property('method') != 'quality':
        return '%s works at the layer\'s own size, %d x %d px.' % (
            'Fast' if config.get_property('method') == 'fast' else 'Trained model', w, h)
    size = config.get_property('size')
    if size == 0 or size >= side:
        return 'Works at the layer\'s own size, %d x %d px%s.' % (
            w, h, '' if size in (0, side) else ' (sizes above it add nothing)')
    scale = size / side
    return 'Works at %d x %d px, then scales to the layer\'s %d x %d.' % (
        max(1, round(w * scale)), max(1, round(h * scale)), w, h)


class StyleChooser:
    """GIMP's own layer chooser of the dialog (GimpDrawableChooser in 3.0, GimpItemChooser in
    3.2), made to show what is chosen: both draw the thumbnail only when the layer is set,
    at the size their preview has then (none before the dialog is shown: a blank button on
    every opening), and never show the layer's name (the button says "Browse..."). Here the
    button's label shows the name and its preview the layer itself, drawn again whenever it
    is resized or another layer is picked."""

    def __init__(self, chooser, Gtk, Pango, empty):
        self.chooser, self.thumbnail, self.empty = chooser, None, empty
        self.prop = 'item' if chooser.find_property('item') else 'drawable'
        buttons = [c for c in chooser.get_children() if isinstance(c, Gtk.Button)]
        box = buttons[0].get_child() if buttons else None
        kids = box.get_children() if isinstance(box, Gtk.Container) else []
        self.title = next((k for k in kids if isinstance(k, Gtk.Label)), None)
        frame = next((k for k in kids if isinstance(k, Gtk.Frame)), None)
        self.preview = frame.get_child() if frame is not None else None
        if self.title is not None:
            self.title.set_ellipsize(Pango.EllipsizeMode.END)
            self.title.set_max_width_chars(30)
        chooser.connect('notify::' + self.prop, lambda *_: GLib.idle_add(self.show))
        if self.preview is not None:
            self.preview.connect('size-allocate', lambda *_: GLib.idle_add(self.draw))
        self.show()

    def item(self):
        item = self.chooser.get_property(self.prop)
        return item if item is not None and item.is_valid() else None

    def label(self):
        return self.title.get_text() if self.title is not None else ''

    def show(self):
        item = self.item()
        if self.title is not None:
            self.title.set_text(item.get_name() if item is not None else self.empty)
            if item is not None:
                self.chooser.set_tooltip_text('Layer "%s" of image "%s"' % (
                    item.get_name(), item.get_image().get_name()))
        self.draw()
        return False

    def draw(self):
        item, area = self.item(), self.preview
        if item is None or area is None:
            return False
        box = area.get_allocation()
        w, h = item.get_width(), item.get_height()
        if box.width < 4 or box.height < 4 or w < 1 or h < 1:
            return False
        scale = min(box.width / w, box.height / h)
        tw, th = max(1, int(w * scale)), max(1, int(h * scale))
        # the layer's own pixels, scaled by GEGL: GIMP's thumbnail of a small layer in a large
        # image is mostly the transparent canvas around it (a checkerboard)
        data = item.get_buffer().get(Gegl.Rectangle.new(0, 0, tw, th), scale, "R'G'B'A u8",
                                     Gegl.AbyssPolicy.CLAMP)
        area.draw((box.width - tw) // 2, (box.height - th) // 2, tw, th,
                  Gimp.ImageType.RGBA_IMAGE, bytes(data), tw * 4)
        self.thumbnail = (tw, th)
        return False


def _dialog(procedure, config, image, content):
    gi.require_version('GimpUi', '3.0')
    gi.require_version('Gtk', '3.0')
    from gi.repository import GimpUi, Gtk, Pango
    GimpUi.init('neural_style')
    dialog = GimpUi.ProcedureDialog.new(procedure, config, 'Neural Style')
    for name in SLIDERS:                      # sliders, as GIMP's own filters have
        dialog.get_scale_entry(name, 1.0)
    for name, kind, *_ in OPTIONS:
        if kind == 'choice':
            # combo boxes in both versions: GIMP 3.2 makes a radio frame of a choice of up to
            # three, whose title has no mnemonic (and it prints a warning for each)
            dialog.get_widget(name, Gtk.ComboBox.__gtype__)
    note = dialog.get_label('size-note', _size_note(config, content), False, False)
    note.set_xalign(0.0)
    note.set_line_wrap(True)
    note.set_max_width_chars(50)
    note.get_style_context().add_class('dim-label')
    more = [name for slot in STYLE_SLOTS[1:] for name in slot]
    dialog.fill_box('more-styles', more)
    dialog.get_label('more-styles-title', 'Blend in more styles', False, False)
    dialog.fill_frame('more-styles-frame', 'more-styles-title', False, 'more-styles')
    dialog.fill(DIALOG_ORDER)
    quality = Gimp.ValueArray.new_from_values([GObject.Value(GObject.TYPE_STRING, 'quality')])
    for name in QUALITY_ONLY:                 # greyed out while Fast is chosen
        dialog.set_sensitive_if_in(name, None, 'method', quality, True)
    trained = Gimp.ValueArray.new_from_values([GObject.Value(GObject.TYPE_STRING, 'trained')])
    dialog.set_sensitive_if_in(MODEL_ARG, None, 'method', trained, True)

    style = StyleChooser(dialog.get_widget('style-layer', GObject.TYPE_NONE), Gtk, Pango,
                         'Choose a layer...')
    for name in ('style-layer-2', 'style-layer-3'):
        StyleChooser(dialog.get_widget(name, GObject.TYPE_NONE), Gtk, Pango, 'None (optional)')
    ok_button = dialog.get_widget_for_response(Gtk.ResponseType.OK)

    def changed(*_):
        if config.get_property('style-layer') is None:
            # Reset to Factory Defaults empties it (its default is none): offer the guess
            # again, as on the first opening; OK waits until there is a style
            _set_guess(config, image, content)
        ok_button.set_sensitive(config.get_property('style-layer') is not None or (
            config.get_property('method') == 'trained'
            and config.get_property(MODEL_ARG) is not None))
        note.set_text(_size_note(config, content))
        return False

    for name in ('style-layer', 'method', 'size', MODEL_ARG):
        config.connect('notify::' + name, lambda *_: GLib.idle_add(changed))
    changed()

    def shown(*_):
        if os.environ.get(TEST_DIR_ENV):
            widgets = {n: dialog.get_widget(n, GObject.TYPE_NONE) for n in DIALOG_ORDER[:-1]}
            layer = config.get_property('style-layer')
            _test_log('dialog-shown style-layer=%s chooser-label=%s thumbnail=%s method=%s '
                      'seed=%d size=%d fit=%s preset-sensitive=%s size-sensitive=%s '
                      'strength-widget=%s style-scale-widget=%s ok-sensitive=%s note=%s' % (
                          layer.get_name() if layer else None, style.label(),
                          '%dx%d' % style.thumbnail if style.thumbnail else None,
                          config.get_property('method'), config.get_property('seed'),
                          config.get_property('size'), config.get_property('fit'),
                          widgets['preset'].is_sensitive(), widgets['size'].is_sensitive(),
                          type(widgets['strength']).__name__,
                          type(widgets['style-scale']).__name__, ok_button.is_sensitive(),
                          note.get_text()))
        return False

    dialog.connect('map-event', lambda *_: GLib.timeout_add(1000, shown) and False)
    ok = dialog.run()
    dialog.destroy()
    layer = config.get_property('style-layer')
    _test_log('dialog ok=%s style-layer=%s method=%s seed=%d' % (
        ok, layer.get_name() if layer else None, config.get_property('method'),
        config.get_property('seed')))
    return ok


def run(procedure, run_mode, image, drawables, config, data):
    interactive = run_mode == Gimp.RunMode.INTERACTIVE
    if interactive and len(drawables) == 1:
        _set_guess(config, image, drawables[0])
        if not _dialog(procedure, config, image, drawables[0]):
            return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, None)
        _remember(config, image)
    try:
        _check_input(drawables, config)
        _stylize(image, drawables[0], config)
    except Cancelled:
        _test_log('cancelled')
        Gimp.progress_end()
        return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, None)
    except Gone:
        # the user closed the image (or deleted the layer): they do not want the result
        # any more, and any further call about it would make GIMP show errors
        _test_log('ended quietly: the image or the layer is gone')
        return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, None)
    except Failure as e:
        _test_log('failed: %s' % e)
        Gimp.progress_end()
        return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR,
                                           GLib.Error(str(e)))
    return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, None)


# ---------------------------------------------------------------- registration

def _declare(procedure):
    rw = GObject.ParamFlags.READWRITE
    procedure.add_layer_argument('style-layer', STYLE_LABELS['style-layer'],
                                 'The painting whose style to use (any layer of any open image)',
                                 True, rw)
    for layer_name, weight_name in STYLE_SLOTS[1:]:
        n = layer_name[-1]
        procedure.add_layer_argument(layer_name, STYLE_LABELS[layer_name],
                                     'Optional: another style to blend in', True, rw)
        procedure.add_double_argument(weight_name, STYLE_LABELS[weight_name],
                                      'Blend weight of style %s (style 1 has weight 1)' % n,
                                      0.0, 10.0, 1.0, rw)
    procedure.add_file_argument(MODEL_ARG, MODEL_LABEL,
                                'For the Trained model method: a network file from "python -m '
                                'nst_core train" or a pytorch/examples fast_neural_style model '
                                '(candy.pth, ...)', Gimp.FileChooserAction.OPEN, True, None, rw)
    for name, kind, label, blurb, default, low, high in OPTIONS:
        if kind == 'choice':
            choice = Gimp.Choice.new()
            for i, (value, text) in enumerate(low):
                choice.add(value, i, text, '')
            procedure.add_choice_argument(name, label, blurb, choice, default, rw)
        elif kind == 'double':
            procedure.add_double_argument(name, label, blurb, low, high, default, rw)
        elif kind == 'bool':
            procedure.add_boolean_argument(name, label, blurb, default, rw)
        else:
            procedure.add_int_argument(name, label, blurb, low, high, default, rw)


class NeuralStyle(Gimp.PlugIn):
    def do_set_i18n(self, name):
        return False

    def do_query_procedures(self):
        return [PROC_NAME]

    def do_create_procedure(self, name):
        procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, run, None)
        procedure.set_image_types('RGB*, GRAY*')
        procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
        procedure.set_menu_label('Neural Style...')
        procedure.add_menu_path('<Image>/Filters/Artistic')
        procedure.set_documentation(
            'Repaint a layer in the style of another picture',
            'Adds a new layer "Neural Style (<style>)" above the selected layer: its content '
            'repainted in the style of the style layer(s), by neural style transfer (Quality: '
            'Gatys et al. optimisation; Fast: a pretrained arbitrary-style network; Trained '
            'model: a network trained for one style, no style layer needed). The work '
            'runs in a separate Python with PyTorch, set up by install.py.', name)
        procedure.set_attribution('Neural Style contributors', 'Neural Style contributors',
                                  '2025')
        _declare(procedure)
        return procedure


if __name__ == '__main__':
    Gimp.main(NeuralStyle.__gtype__, sys.argv)
