# Runs INSIDE gimp-console (python-fu-eval), as batch_test.py: the warm worker in real GIMP
# (docs/protocol.md "The warm worker"). The plug-in is the installed one, the worker the real
# nst_core with the real weights, at small sizes. tests/test_gimp.py runs this through
# tests/gimp/run.sh with BATCH_SCRIPT.
import glob
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.environ['NS_TEST'])
sys.path.insert(0, os.environ['NS_PLUGIN_DIR'])
import fixtures as fx  # noqa: E402
import nst_client  # noqa: E402  (the installed plug-in's worker client)
from gi.repository import Gimp  # noqa: E402

CONFIG = os.path.join(os.environ['NS_PLUGIN_DIR'], 'neural_style.json')
S = Gimp.PDBStatusType
FAST = dict(method='fast')
QUALITY = dict(method='quality', size=96, preset='draft')


def config():
    with open(CONFIG) as f:
        cfg = json.load(f)
    return dict(cfg, _path=CONFIG)


def worker(label, image, layer, status=S.SUCCESS, **props):
    """Run the plug-in; (pid, 'warm' | 'one-shot') of the worker it used, image unchanged
    unless it succeeded."""
    before = fx.snapshot(image)
    st, msg, dt = fx.run_plugin(image, layer, **props)
    log = fx.hook_log()
    lines = [line.split() for line in log if line.startswith('worker-pid ')]
    fx.check('%s: status %s' % (label, status), st == status, '(%s) %s' % (st, msg[:300]))
    if status != S.SUCCESS:
        fx.check('%s: image byte-identical' % label, fx.snapshot(image) == before)
    else:
        for layer_ in image.get_layers():
            if layer_.get_name().startswith('Neural Style'):
                image.remove_layer(layer_)
    fx.check('%s: worker used' % label, len(lines) == 1, log[-5:])
    return (int(lines[0][1]), lines[0][2]) if len(lines) == 1 else (None, None)


def not_busy_within(seconds):
    """The warm worker answers a new connection as idle within `seconds`."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            sock, hello = nst_client.WarmWorker(config())._dial()
            sock.close()
            if not hello.get('busy'):
                return True
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    return False


def torch_leftovers():
    """The module torch 2.6 writes into a temporary folder of its own when it is imported
    (torch.distributed.nn.jit.instantiator); it removes it only at a normal interpreter
    exit, which a killed worker, and the warm worker (os._exit), never have."""
    import tempfile
    return set(glob.glob(os.path.join(tempfile.gettempdir(), 'tmp*',
                                      '_remote_module_non_scriptable.py')))


TORCH_TMP_BEFORE = torch_leftovers()
fx.set_config(CONFIG, keep_alive_seconds=600)
img = Gimp.Image.new(64, 48, Gimp.ImageBaseType.RGB)
photo = fx.new_layer(img, 'photo', 64, 48, fx.content_pixels(64, 48))
painting = fx.new_layer(img, 'painting', 40, 40, fx.style_pixels(40, 40))
img.clean_all()
STYLE = dict(style_layer=painting)

# ---- 1. the second run reuses the worker ----------------------------------------------------
fx.reset_hook()
first = worker('first Fast run', img, photo, **STYLE, **FAST)
fx.check('first run: a warm worker was started', first[1] == 'warm' and
         'warm worker: started pid %d' % first[0] in fx.hook_log(), fx.hook_log()[-6:])
fx.reset_hook()
t0 = time.time()
second = worker('second Fast run', img, photo, **STYLE, **FAST)
fx.check('second run: the same worker (same pid)', second == first, (first, second))
fx.check('second run: reused, not started', 'warm worker: reusing pid %d' % first[0]
         in fx.hook_log(), fx.hook_log()[-6:])
print('TIME second warm Fast run %.2f s' % (time.time() - t0), flush=True)
fx.check('the worker stays up after the run', fx.alive(first[0]))

# ---- 2. Cancel during a warm Quality run: the job dropped, the worker alive and idle -------
fx.reset_hook(cancel_after=3)
got = worker('cancel (Quality)', img, photo, status=S.CANCEL, **STYLE, **QUALITY)
fx.check('cancel: the same warm worker ran it', got == first, got)
fx.check('cancel: the worker idle again within 1.5 s', not_busy_within(1.5))
fx.check('cancel: the worker alive', fx.alive(first[0]))
fx.check('cancel: no job folder left', fx.job_dirs() == [], fx.job_dirs())

# GIMP's own Cancel: the plug-in SIGKILLed with its process group in the middle of a step
fx.reset_hook(kill_at='progress 3')
before = fx.snapshot(img)
st, msg, _ = fx.run_plugin(img, photo, **STYLE, **QUALITY)
fx.check('killed plug-in: the PDB call reports it', st == S.CALLING_ERROR, '(%s)' % st)
fx.check('killed plug-in: image byte-identical', fx.snapshot(img) == before)
fx.check('killed plug-in: the warm worker dropped the job within 1.5 s', not_busy_within(1.5))
fx.check('killed plug-in: the warm worker alive', fx.alive(first[0]))
deadline = time.time() + 3
while fx.job_dirs() and time.time() < deadline:
    time.sleep(0.05)
fx.check('killed plug-in: no job folder left within 3 s', fx.job_dirs() == [], fx.job_dirs())
fx.reset_hook()
fx.check('after the kill: the next run uses the same worker',
         worker('run after a kill', img, photo, **STYLE, **FAST) == first)

# ---- 3. a worker killed between runs (its socket file stays: stale) is replaced --------------
os.kill(first[0], signal.SIGKILL)
fx.check('killed worker: gone', fx.gone_within(first[0], 2.0))
path = nst_client.WarmWorker(config()).socket_path
fx.check('killed worker: its socket file is left', os.path.exists(path))
fx.reset_hook()
third = worker('run after the worker was killed', img, photo, **STYLE, **FAST)
fx.check('killed worker: a new warm worker', third[1] == 'warm' and third[0] != first[0],
         third)

# ---- 4. a worker of another install or version at the socket's path is never asked --------
os.kill(third[0], signal.SIGKILL)
fx.gone_within(third[0], 2.0)
os.unlink(path)
other = subprocess.Popen([config()['python'], '-m', 'nst_core', 'serve', '--socket', path,
                          '--key', 'another-install', '--keep-alive', '60'],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
deadline = time.time() + 120
while not os.path.exists(path) and time.time() < deadline:
    time.sleep(0.1)
fx.reset_hook()
fourth = worker('run beside another version\'s worker', img, photo, **STYLE, **FAST)
fx.check('other version: not used', fourth[0] not in (None, other.pid) and fourth[1] == 'warm',
         (fourth, other.pid))
fx.check('other version: replaced', any(line.startswith('warm worker: replacing pid %d'
                                                        % other.pid) for line in fx.hook_log()))
try:
    other.wait(5)
    fx.check('other version: it exits once its socket is gone', True)
except subprocess.TimeoutExpired:
    fx.check('other version: it exits once its socket is gone', False)
    other.kill()

# ---- 5. two images at once: the second job gets a worker of its own ------------------------
img2 = Gimp.Image.new(48, 40, Gimp.ImageBaseType.RGB)
photo2 = fx.new_layer(img2, 'photo 2', 48, 40, fx.content_pixels(48, 40))
busy = nst_client.WarmWorker(config()).connect()
with nst_client.JobFolder(config()) as folder:
    c = folder.buffer('content.rgba', 64, 48, fx.pixels(photo))
    s = folder.buffer('style0.rgba', 40, 40, fx.pixels(painting))
    busy.send_job(folder.write_job(c, [s], {'method': 'quality', 'size': 256,
                                            'iterations': 100000}))
    fx.check('two at once: the first job is running', busy.lines.get(timeout=120) is not None)
    fx.reset_hook()
    got = worker('two at once: a run on another image', img2, photo2, **STYLE, **FAST)
    fx.check('two at once: it ran on a worker of its own', got[1] == 'one-shot' and
             got[0] != fourth[0], got)
    fx.check('two at once: the warm worker still holds the first job', fx.alive(fourth[0]))
    busy.stop()
fx.check('two at once: the warm worker idle again', not_busy_within(1.5))
img2.delete()

# ---- 6. keep_alive_seconds 0: a worker per run, as before ---------------------------------
os.kill(fourth[0], signal.SIGKILL)
fx.gone_within(fourth[0], 2.0)
fx.set_config(CONFIG, keep_alive_seconds=0)
fx.reset_hook()
got = worker('keep_alive 0', img, photo, **STYLE, **FAST)
fx.check('keep_alive 0: a one-shot worker, gone after the run',
         got[1] == 'one-shot' and fx.gone_within(got[0], 2.0), got)

# ---- 7. idle exit ---------------------------------------------------------------------------
fx.set_config(CONFIG, keep_alive_seconds=3)
fx.reset_hook()
got = worker('keep_alive 3', img, photo, **STYLE, **FAST)
path = nst_client.WarmWorker(config()).socket_path
fx.check('idle: up right after the run', got[1] == 'warm' and fx.alive(got[0]), got)
fx.check('idle: gone 3 s after the run (within 6 s)', fx.gone_within(got[0], 6.0))
fx.check('idle: its socket file removed', not os.path.exists(path))

# ---- 8. the warm worker goes when the GIMP it serves goes (unless another GIMP uses it) ----
# Other GIMPs: gimp-console processes started here, on this profile, each running one Fast
# job through the PDB and quitting (or waiting for a file, to be killed).
CHILD = os.path.join(os.environ['NS_OUT'], 'child_gimp.py')
with open(CHILD, 'w') as f:
    f.write('''import os, sys, time
sys.path.insert(0, os.environ['NS_TEST'])
import fixtures as fx
from gi.repository import Gimp
img = Gimp.Image.new(64, 48, Gimp.ImageBaseType.RGB)
photo = fx.new_layer(img, 'photo', 64, 48, fx.content_pixels(64, 48))
painting = fx.new_layer(img, 'painting', 40, 40, fx.style_pixels(40, 40))
st, msg, dt = fx.run_plugin(img, photo, style_layer=painting, method='fast')
print('CHILD GIMP run: %s %s' % (st, msg), flush=True)
gate = os.environ.get('CHILD_WAIT')
while gate and not os.path.exists(gate):
    time.sleep(0.1)
''')


def other_gimp(label, wait=None):
    """Start another GIMP that runs one Fast job; returns (its process, the warm worker's
    pid it used) once the job is done."""
    fx.reset_hook()
    env = dict(os.environ)
    env.pop('CHILD_WAIT', None)
    if wait:
        env['CHILD_WAIT'] = wait
    out = open(os.path.join(os.environ['NS_OUT'], 'child-%s.log' % label.split()[0]), 'w')
    proc = subprocess.Popen(['gimp-console', '-i', '-n', '-d',
                             '--batch-interpreter=python-fu-eval', '-b',
                             "exec(open(%r).read())" % CHILD, '--quit'],
                            env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.time() + 240
    while time.time() < deadline and not any(line.startswith('inserted layer')
                                             for line in fx.hook_log()):
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    lines = [line.split() for line in fx.hook_log() if line.startswith('worker-pid ')]
    fx.check('%s: its run used the warm worker' % label,
             len(lines) == 1 and lines[0][2] == 'warm', fx.hook_log()[-6:])
    return proc, (int(lines[0][1]) if lines else None)


def quits(proc, label):
    try:
        proc.wait(120)
    except subprocess.TimeoutExpired:
        proc.kill()
    fx.check('%s: it quit' % label, proc.returncode == 0, proc.returncode)


fx.set_config(CONFIG, keep_alive_seconds=600)
# a) one GIMP: it quits, the worker it started goes with it (not 600 s later)
gimp_a, worker_a = other_gimp('GIMP A')
fx.check('GIMP A: a worker of its own was started',
         any(line.startswith('warm worker: started pid') for line in fx.hook_log()))
quits(gimp_a, 'GIMP A')
t0 = time.time()
fx.check('GIMP A quit: its warm worker is gone within 5 s (keep-alive 600 s)',
         worker_a and fx.gone_within(worker_a, 5.0), '%s, %.1f s' % (worker_a, time.time() - t0))
# b) two GIMPs on one worker: the one that quits does not take it from the other
fx.reset_hook()
mine = worker('this GIMP\'s run', img, photo, **STYLE, **FAST)
gimp_b, worker_b = other_gimp('GIMP B')
fx.check('GIMP B: it reused this GIMP\'s worker', worker_b == mine[0], (worker_b, mine))
quits(gimp_b, 'GIMP B')
time.sleep(3)
fx.check('GIMP B quit: the worker stays for this GIMP, which still uses it',
         fx.alive(mine[0]))
fx.reset_hook()
fx.check('GIMP B quit: this GIMP\'s next run uses it',
         worker('this GIMP\'s next run', img, photo, **STYLE, **FAST) == mine)
# c) a GIMP that is killed (a crash, or killed from a task manager) takes its worker along
os.kill(mine[0], signal.SIGKILL)
fx.gone_within(mine[0], 2.0)
gate = os.path.join(os.environ['NS_OUT'], 'child-gate')
gimp_c, worker_c = other_gimp('GIMP C', wait=gate)
fx.check('GIMP C: a worker of its own', worker_c not in (None, mine[0]), worker_c)
gimp_c.kill()
gimp_c.wait()
fx.check('GIMP C killed: its warm worker is gone within 5 s',
         worker_c and fx.gone_within(worker_c, 5.0), worker_c)
with open(gate, 'w'):
    pass

# ---- 9. no temporary files of torch left behind, however the workers above ended ---------
# (killed warm workers: sections 3, 4, 8; one-shot workers: 5, 6; idle exit: 7; their GIMP
# gone: 8)
time.sleep(1)
left = sorted(torch_leftovers() - TORCH_TMP_BEFORE)
fx.check('no torch module left in the temporary folder by any worker above', not left, left)

fx.set_config(CONFIG, keep_alive_seconds=0)
img.delete()
fx.finish()
