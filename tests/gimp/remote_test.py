# Runs INSIDE GUI gimp under Xvfb (python-fu-eval), as gui_test.py: the worker over SSH in
# real GIMP (docs/remote.md). The GPU box is the host: tests/gimp/run.sh, given
# NS_REMOTE_PYTHON, started tests/gimp/remote_host.py there (sshd on 127.0.0.1, a remote
# python with the real engine and weights, its warm worker in a runtime folder of its own)
# and left what the chroot's ssh needs in NS_REMOTE. The plug-in is the installed one; only
# its config names the remote. tests/test_gimp.py runs this with GUI_SCRIPT.
#
# The chroot sees the host's processes (/proc is mounted inside), not its files: the box's
# processes are those with its runtime folder in their environment (other tests on this
# host may run their own), and its warm worker's log, in the folder the worker runs in, is
# read through /proc/PID/cwd.
import glob
import json
import os
import sys
import time

sys.path.insert(0, os.environ['NS_TEST'])
import fixtures as fx  # noqa: E402
from gi.repository import Gimp  # noqa: E402

S = Gimp.PDBStatusType
CONFIG = os.path.join(os.environ['NS_PLUGIN_DIR'], 'neural_style.json')
MAIN = ' – GIMP$'
W, H = 128, 96
with open(os.path.join(os.environ['NS_REMOTE'], 'remote.json')) as f:
    BOX = json.load(f)
# 60 steps: seconds of work left when the plug-in dies at the 3rd
QUALITY = dict(method='quality', size=64, preset='draft')
FAST = dict(method='fast')


def box_processes(*words):
    """The pids of the GPU box's processes whose arguments include `words` in a row."""
    mine = ('XDG_RUNTIME_DIR=%s' % BOX['runtime']).encode()
    found = []
    for entry in os.listdir('/proc'):
        try:
            with open('/proc/%s/cmdline' % entry, 'rb') as f:
                args = f.read().decode('utf-8', 'replace').split('\0')
            if not any(args[i:i + len(words)] == list(words) for i in range(len(args))):
                continue
            with open('/proc/%s/environ' % entry, 'rb') as f:
                if mine in f.read().split(b'\0'):
                    found.append(int(entry))
        except (OSError, ValueError):
            continue
    return found


def box_worker():
    pids = box_processes('nst_core', 'serve')
    return pids[0] if len(pids) == 1 else pids or None


def box_log(pid):
    """The warm worker's log, in its own folder (the runtime folder's neural-style/)."""
    logs = glob.glob('/proc/%d/cwd/worker-*.log' % pid)
    try:
        with open(logs[0], encoding='utf-8', errors='replace') as f:
            return f.read()
    except (IndexError, OSError):
        return ''


def one_undo_step_removes(label, image, names):
    """Ctrl+Z in the image's window, once: the result goes, the layers are `names` again."""
    r = fx.done(fx.ask({'find': MAIN}, {'key': 'ctrl+z'}))
    fx.check('%s: Ctrl+Z pressed' % label, r['ok'], r)
    deadline = time.time() + 5
    while len(image.get_layers()) != len(names) and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)                          # ...and whatever a second undo step would do
    got = [layer.get_name() for layer in image.get_layers()]
    fx.check('%s: ONE Ctrl+Z removed the whole result' % label, got == names, got)


def adds_one_layer(label, image, photo, **props):
    """A run through ssh: SUCCESS, one new layer above the photo, painted (not the photo),
    the job done by the box's warm worker, one Ctrl+Z undoes it. The worker's pid."""
    names = [layer.get_name() for layer in image.get_layers()]
    fx.reset_hook()
    st, msg, dt = fx.run_plugin(image, photo, **props)
    Gimp.displays_flush()
    print('TIME %s %.1f s' % (label, dt), flush=True)
    log = fx.hook_log()
    fx.check('%s: SUCCESS' % label, st == S.SUCCESS, '(%s) %s' % (st, msg[:600]))
    fx.check('%s: the job went over ssh' % label,
             any(line.startswith('worker-pid ') and line.endswith(' remote') for line in log)
             and any(line.startswith('remote: hello ') for line in log), log[-8:])
    got = [layer.get_name() for layer in image.get_layers()]
    fx.check('%s: exactly one new layer, above the photo' % label,
             got[1:] == names and got[0].startswith('Neural Style'), got)
    new = image.get_layers()[0]
    if len(got) == len(names) + 1:
        fx.check('%s: the photo\'s size' % label, (new.get_width(), new.get_height()) == (W, H),
                 (new.get_width(), new.get_height()))
        result = fx.pixels(new)
        diff = fx.mean_abs_diff(result, PHOTO)
        fx.check('%s: painted, not the photo unchanged' % label, diff > 8,
                 'mean |diff| %.1f' % diff)
        fx.check('%s: the photo\'s alpha' % label, result[3::4] == PHOTO[3::4])
        fx.save_raw('remote ' + label, new)
    fx.check('%s: the photo and the painting byte-identical' % label,
             fx.pixels(photo) == PHOTO and fx.pixels(painting) == PAINTING)
    one_undo_step_removes(label, image, names)
    pid = box_worker()
    fx.check('%s: one warm worker on the box' % label, isinstance(pid, int), pid)
    return pid


fx.set_config(CONFIG, remote=BOX['url'], ssh_command=BOX['ssh_command'],
              keep_alive_seconds=600)
img = Gimp.Image.new(W, H, Gimp.ImageBaseType.RGB)
img.undo_disable()                           # building the fixture is not undoable
painting = fx.new_layer(img, 'painting', 64, 64, fx.style_pixels(64, 64))
photo = fx.new_layer(img, 'photo', W, H, fx.content_pixels(W, H))
img.undo_enable()
img.set_selected_layers([photo])
PHOTO, PAINTING = fx.pixels(photo), fx.pixels(painting)
display = Gimp.Display.new(img)
Gimp.displays_flush()
STYLE = dict(style_layer=painting)
fx.check('fixture: no warm worker on the box yet', box_worker() is None, box_worker())

# ---- 1. Quality through ssh: one layer, one undo step; the box keeps its worker warm -------
first = adds_one_layer('Quality over ssh', img, photo, **STYLE, **QUALITY)

# ---- 2. GIMP's Cancel (the plug-in SIGKILLed with its process group, ssh with it) in the
# middle of a Quality run: the box's worker drops the job within a second (1.5 s allowed for
# a busy machine, as tests/test_remote.py allows) and stays -----------------------------------
img.clean_all()
before = fx.snapshot(img)
first = first if isinstance(first, int) else -1
cancelled = box_log(first).count(': cancelled in')
fx.reset_hook(kill_at='progress 3')
st, msg, _ = fx.run_plugin(img, photo, **STYLE, **QUALITY)
relays = box_processes('nst_core', 'remote')
# the plug-in's last words, just before its SIGKILL: when it died
t_kill = os.path.getmtime(os.path.join(fx.HOOK, 'plugin.log'))
print('TIME the PDB call returned %.2f s after the plug-in died' % (time.time() - t_kill),
      flush=True)
log = fx.hook_log()
fx.check('cancel: the plug-in was killed at the 3rd step', 'killing myself at progress 3' in log
         and any(line.startswith('worker-pid ') and line.endswith(' remote') for line in log),
         log[-4:])
fx.check('cancel: the PDB call reports the dead plug-in', st == S.CALLING_ERROR,
         '(%s) %s' % (st, msg[:200]))
# when the box's worker logged the job cancelled, and when its remote end (the process
# sshd started) was gone, in seconds after the plug-in died
ended = gone = None
while time.time() < t_kill + 5 and (ended is None or gone is None):
    now = time.time() - t_kill
    if ended is None and box_log(first).count(': cancelled in') > cancelled:
        ended = now
    if gone is None and not any(fx.alive(pid) for pid in relays):
        gone = now
    time.sleep(0.02)
print('TIME remote job cancelled %s s, its remote end gone %s s after the plug-in died'
      % (ended and round(ended, 2), gone and round(gone, 2)), flush=True)
fx.check('cancel: the box\'s worker logged the job cancelled within 1.5 s',
         ended is not None and ended < 1.5, box_log(first).splitlines()[-3:])
fx.check('cancel: no remote end (nst_core remote) left on the box within 3 s',
         gone is not None and gone < 3, box_processes('nst_core', 'remote'))
fx.check('cancel: the box\'s warm worker stays (same pid)', box_worker() == first,
         (box_worker(), first))
fx.check('cancel: image byte-identical', fx.snapshot(img) == before)
fx.check('cancel: image not dirty (no undo step)', not img.is_dirty())
deadline = time.time() + 3
while fx.job_dirs() and time.time() < deadline:
    time.sleep(0.05)
fx.check('cancel: no job folder left here within 3 s', fx.job_dirs() == [], fx.job_dirs())

# ---- 3. Fast through ssh after the cancel: one layer, on the same warm worker -------------
fast = adds_one_layer('Fast over ssh', img, photo, **STYLE, **FAST)
fx.check('Fast over ssh: the same warm worker as before the cancel', fast == first,
         (fast, first))

fx.set_config(CONFIG, remote=None, keep_alive_seconds=0)
img.clean_all()
fx.finish()
