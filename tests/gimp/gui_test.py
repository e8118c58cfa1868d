# Runs INSIDE GUI gimp under Xvfb (python-fu-eval). tests/gimp/run.sh drives the keyboard and
# mouse; the two sides meet through files in NS_OUT:
#   undo-ready      -> run.sh presses Ctrl+Z once       -> undo-sent
#   cancel-before   -> run.sh grabs the screen          -> cancel-grabbed
#   (plugin.log shows progress) -> run.sh clicks the status bar's Cancel -> cancel-clicked
#   dialog-opening  -> run.sh presses Return in the dialog (grabbing it first if SHOT is set)
import os
import sys
import time

sys.path.insert(0, os.environ['NS_TEST'])
import fixtures as fx  # noqa: E402
from gi.repository import Gimp  # noqa: E402

S = Gimp.PDBStatusType
W, H = 160, 120


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

fx.finish()
