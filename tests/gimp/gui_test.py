# Runs INSIDE GUI gimp under Xvfb (python-fu-eval). tests/gimp/run.sh drives the keyboard and
# mouse; the two sides meet through files in NS_OUT:
#   undo-ready      -> run.sh presses Ctrl+Z once       -> undo-sent
#   cancel-before   -> run.sh grabs the screen          -> cancel-grabbed
#   (plugin.log shows progress) -> run.sh clicks the status bar's Cancel -> cancel-clicked
#   dialog-opening  -> run.sh presses Return in the dialog (grabbing it first if SHOT is set)
#   concurrent-ready (and gate-a, made by run A's worker) -> run.sh starts Neural Style on the
#                      active image B from the GUI (Search Actions, OK) -> concurrent-started
import json
import os
import shutil
import sys
import time

sys.path.insert(0, os.environ['NS_TEST'])
import fixtures as fx  # noqa: E402
from gi.repository import Gimp  # noqa: E402

S = Gimp.PDBStatusType
W, H = 160, 120
CONFIG = os.path.join(os.environ['NS_PLUGIN_DIR'], 'neural_style.json')


def signal(name):
    open(os.path.join(fx.OUT, name), 'w').close()


def wait_for(name, seconds):
    deadline = time.time() + seconds
    while not os.path.exists(os.path.join(fx.OUT, name)) and time.time() < deadline:
        time.sleep(0.1)
    return os.path.exists(os.path.join(fx.OUT, name))


img = Gimp.Image.new(W, H, Gimp.ImageBaseType.RGB)
img.undo_disable()                           # building the fixture is not undoable
style = fx.new_layer(img, 'painting', W, H, fx.style_pixels(W, H, 0))
content = fx.new_layer(img, 'photo', W, H, fx.content_pixels(W, H))
img.undo_enable()
img.set_selected_layers([content])
before = {layer: fx.pixels(layer) for layer in (content, style)}
display = Gimp.Display.new(img)
Gimp.displays_flush()

# ---- 1. one Ctrl+Z removes the whole result -------------------------------------------------
fx.reset_hook()
st, msg, dt = fx.run_plugin(img, content, style_layer=style, method='fast')
Gimp.displays_flush()
fx.check('undo: plug-in SUCCESS', st == S.SUCCESS, msg)
names = [layer.get_name() for layer in img.get_layers()]
fx.check('undo: 3 layers after the run', len(names) == 3, names)
signal('undo-ready')
wait_for('undo-sent', 60)
deadline = time.time() + 5                   # let GIMP handle the key press
while len(img.get_layers()) != 2 and time.time() < deadline:
    time.sleep(0.1)
time.sleep(0.5)                              # ...and whatever a second undo step would do
names = [layer.get_name() for layer in img.get_layers()]
fx.check('undo: ONE Ctrl+Z removed the whole result', names == ['photo', 'painting'], names)
fx.check('undo: source pixels as before', all(fx.pixels(l) == d for l, d in before.items()))

# ---- 2. the status bar's Cancel button stops the run -----------------------------------------
fx.reset_hook()
signal('cancel-before')
wait_for('cancel-grabbed', 30)
st, msg, dt = fx.run_plugin(img, content, style_layer=style, method='quality', preset='best',
                            size=W)
clicked = os.path.exists(os.path.join(fx.OUT, 'cancel-clicked'))
pids = fx.logged_worker_pids()
fx.check('cancel: the harness clicked Cancel while the progress ran', clicked)
fx.check('cancel: the run did not succeed', st != S.SUCCESS, '(%s) %s after %.1f s'
         % (st, msg, dt))
fx.check('cancel: no layer added', len(img.get_layers()) == 2,
         [layer.get_name() for layer in img.get_layers()])
fx.check('cancel: the worker stopped within 2 s', pids and fx.gone_within(pids[0], 2.0), pids)
fx.check('cancel: source pixels as before', all(fx.pixels(l) == d for l, d in before.items()))

# ---- 3. the dialog: run.sh presses Return (and grabs it for docs/img/dialog.png) -----------
fx.reset_hook()
signal('dialog-opening')
st, msg, dt = fx.run_plugin(img, content, run_mode=Gimp.RunMode.INTERACTIVE, style_layer=style,
                            method='fast')
names = [layer.get_name() for layer in img.get_layers()]
fx.check('dialog: OK runs the plug-in', st == S.SUCCESS, '(%s) %s' % (st, msg))
fx.check('dialog: with the values given and the chosen style layer',
         'dialog ok=True style-layer=painting method=fast' in fx.hook_log(), fx.hook_log()[:1])
fx.check('dialog: one new layer', names == ['Neural Style (painting)', 'photo', 'painting'],
         names)
fx.check('no job folder left, not even the cancelled run\'s', fx.job_dirs() == [], fx.job_dirs())

# ---- 4. two runs at once, in two images of this one GIMP ------------------------------------
# Run A (this script, through the PDB) holds its worker at a gate until run B's worker has
# started; run.sh starts run B from the GUI on the other image (the active one) while A waits:
# Search Actions (/), "Neural Style", Return, OK in the dialog. Both real workers then run at
# the same time, each from its own plug-in process. The gate is the only change to the
# worker: it records the job folders that exist when B's worker starts (after B's sweep of
# stale folders), so a sweep that took A's live folder would show.
with open(CONFIG) as f:
    real_python = json.load(f)['python']
gate = os.path.join(fx.OUT, 'gate')
gate_python = os.path.join(fx.OUT, 'gate-python')
with open(gate_python, 'w') as f:
    f.write('''#!/bin/sh
if mkdir %(g)s-a 2>/dev/null; then      # run A: wait (at most 2 min) for run B's worker
  i=0
  while [ ! -e %(g)s-b-started ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done
  exec %(py)s "$@"
fi
ls -d "${TMPDIR:-/tmp}"/neural-style-* > %(g)s-b-saw
touch %(g)s-b-started
exec %(py)s "$@"
''' % {'g': gate, 'py': real_python})
os.chmod(gate_python, 0o755)

pair = {}
for name in ('A', 'B'):                  # B's display last: B is the active image in the GUI
    im = Gimp.Image.new(96, 72, Gimp.ImageBaseType.RGB)
    im.undo_disable()
    painting = fx.new_layer(im, 'painting ' + name, 96, 72, fx.style_pixels(96, 72, 1))
    photo = fx.new_layer(im, 'photo ' + name, 96, 72, fx.content_pixels(96, 72))
    im.undo_enable()
    im.set_selected_layers([photo])
    Gimp.Display.new(im)
    pair[name] = (im, photo, painting, {l: fx.pixels(l) for l in (photo, painting)})
Gimp.displays_flush()
(img_a, photo_a, painting_a, src_a), (img_b, photo_b, painting_b, src_b) = pair['A'], pair['B']

fx.reset_hook()
shutil.copy(CONFIG, CONFIG + '.orig')
try:
    with open(CONFIG + '.orig') as f:
        cfg = json.load(f)
    cfg['python'] = gate_python
    with open(CONFIG, 'w') as f:
        json.dump(cfg, f)
    signal('concurrent-ready')
    st, msg, dt = fx.run_plugin(img_a, photo_a, style_layer=painting_a, method='fast')
    deadline = time.time() + 180            # B may still be finishing
    while len(img_b.get_layers()) < 3 and time.time() < deadline:
        time.sleep(0.2)
finally:
    os.replace(CONFIG + '.orig', CONFIG)
log = fx.hook_log()
print('plugin.log of the two runs:\n  ' + '\n  '.join(log), flush=True)
jobs = [line.split() for line in log if line.startswith('job-dir ')]
fx.check('two at once: the GUI started run B', os.path.exists(os.path.join(fx.OUT,
                                                                          'concurrent-started')))
fx.check('two at once: two plug-in processes, two job folders',
         len(jobs) == 2 and jobs[0][3] != jobs[1][3] and jobs[0][1] != jobs[1][1], jobs)
fx.check('two at once: run A SUCCESS', st == S.SUCCESS, '(%s) %s after %.1f s' % (st, msg, dt))
names_a = [layer.get_name() for layer in img_a.get_layers()]
names_b = [layer.get_name() for layer in img_b.get_layers()]
fx.check('two at once: image A got its result, directly above its photo',
         names_a == ['Neural Style (painting A)', 'photo A', 'painting A'], names_a)
fx.check('two at once: image B got its result, directly above its photo',
         len(names_b) == 3 and names_b[0].startswith('Neural Style (') and
         names_b[1:] == ['photo B', 'painting B'], names_b)
fx.check('two at once: both results were inserted',
         sum(line.startswith('inserted layer') for line in log) == 2)
fx.check('two at once: sources of both images byte-identical',
         all(fx.pixels(l) == d for l, d in list(src_a.items()) + list(src_b.items())))
try:
    with open(gate + '-b-saw') as f:
        saw = f.read().split()
except OSError:
    saw = []
fx.check('two at once: run A\'s job folder was alive when run B\'s worker started',
         jobs and jobs[0][1] in saw, (saw, jobs))
fx.check('two at once: no job folder left', fx.job_dirs() == [], fx.job_dirs())

fx.finish()
