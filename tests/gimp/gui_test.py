# Runs INSIDE GUI gimp under Xvfb (python-fu-eval), started by tests/gimp/run.sh with -c
# (GIMP's messages to stderr, which is NS_OUT/gui.log). This script cannot press keys: it
# asks tests/gimp/screen.py (serve), which acts on the screen with xdotool, by leaving
# requests in NS_OUT/req/ (see screen.py). A request made before a blocking PDB call (the
# plug-in's run) is carried out while the call runs: it waits for the plug-in's hook log or
# for a window first.
import json
import os
import re
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.environ['NS_TEST'])
import fixtures as fx  # noqa: E402
from gi.repository import Gimp, Gio  # noqa: E402

S = Gimp.PDBStatusType
W, H = 160, 120
CONFIG = os.path.join(os.environ['NS_PLUGIN_DIR'], 'neural_style.json')
GUI_LOG = os.path.join(fx.OUT, 'gui.log')
DIALOG = '^Neural Style$'
MAIN = ' – GIMP$'
MAGENTA = (255, 0, 255)
# the plug-in logs what its dialog shows a second after it appears; one without that log
# (an older plug-in) still gets its keys after 15 s
SHOWN = {'wait_log': '^dialog-shown ', 'timeout': 15, 'optional': True}
ask, done = fx.ask, fx.done          # requests to screen.py


def gui_log():
    with open(GUI_LOG, encoding='utf-8', errors='replace') as f:
        return f.read()


def shown_lines():
    return [line for line in fx.hook_log() if line.startswith('dialog-shown ')]


def field(line, name):
    """The value of name=... in a dialog-shown line (values run to the next ' key=')."""
    m = re.search(r'(?:^| )%s=(.*?)(?= [a-z-]+=|$)' % re.escape(name), line or '')
    return m.group(1) if m else None


def colour_pixels(png, colour, tolerance=40):
    """How many pixels of a screenshot are within tolerance of colour (per channel)."""
    from gi.repository import GdkPixbuf
    pix = GdkPixbuf.Pixbuf.new_from_file(png)
    data, n, stride = pix.get_pixels(), pix.get_n_channels(), pix.get_rowstride()
    count = 0
    for y in range(pix.get_height()):
        row = data[y * stride:y * stride + pix.get_width() * n]
        for x in range(0, len(row), n):
            if all(abs(row[x + c] - colour[c]) <= tolerance for c in range(3)):
                count += 1
    return count


def painting_pixels(w, h):
    """A style layer no part of GIMP's interface shares colours with: magenta with black
    diagonal strokes (its thumbnail is mostly magenta)."""
    out = bytearray(w * h * 4)
    for y in range(h):
        for x in range(w):
            px = (20, 20, 20) if (x + y) % 12 < 2 else MAGENTA
            out[(y * w + x) * 4:(y * w + x) * 4 + 4] = bytes(px) + b'\xff'
    return bytes(out)


def set_python(path):
    with open(CONFIG + '.orig') as f:
        cfg = json.load(f)
    cfg['python'] = path
    with open(CONFIG, 'w') as f:
        json.dump(cfg, f)


def job_folder_gone_within(seconds):
    deadline = time.time() + seconds
    while fx.job_dirs() and time.time() < deadline:
        time.sleep(0.05)
    return fx.job_dirs() == []


shutil.copy(CONFIG, CONFIG + '.orig')
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
r = done(ask({'find': MAIN}, {'key': 'ctrl+z'}))
fx.check('undo: Ctrl+Z pressed', r['ok'], r)
deadline = time.time() + 5                   # let GIMP handle the key press
while len(img.get_layers()) != 2 and time.time() < deadline:
    time.sleep(0.1)
time.sleep(0.5)                              # ...and whatever a second undo step would do
names = [layer.get_name() for layer in img.get_layers()]
fx.check('undo: ONE Ctrl+Z removed the whole result', names == ['photo', 'painting'], names)
fx.check('undo: source pixels as before', all(fx.pixels(l) == d for l, d in before.items()))

# ---- 2. the status bar's Cancel button stops the run and leaves no job folder ---------------
fx.reset_hook()
r = done(ask({'grab_screen': 'cancel-before.png'}))
fx.check('cancel: screen grabbed before the run', r['ok'], r)
n = ask({'wait_log': '^progress ', 'timeout': 120}, {'sleep': 1},
        {'grab_screen': 'cancel-during.png'},
        {'click_cancel': ['cancel-before.png', 'cancel-during.png']})
st, msg, dt = fx.run_plugin(img, content, style_layer=style, method='quality', preset='best',
                            size=W)
t_cancel = time.time()
r = done(n)
pids = fx.logged_worker_pids()
fx.check('cancel: the harness clicked Cancel while the progress ran', r['ok'] and any(
    line.startswith('clicked Cancel') for line in r.get('log', [])), r)
fx.check('cancel: the run did not succeed', st != S.SUCCESS, '(%s) %s after %.1f s'
         % (st, msg, dt))
fx.check('cancel: no layer added', len(img.get_layers()) == 2,
         [layer.get_name() for layer in img.get_layers()])
fx.check('cancel: the worker stopped within 2 s', pids and fx.gone_within(pids[0], 2.0), pids)
fx.check('cancel: its job folder is gone within 3 s, without another run',
         job_folder_gone_within(3.0 - (time.time() - t_cancel)), fx.job_dirs())
fx.check('cancel: source pixels as before', all(fx.pixels(l) == d for l, d in before.items()))

# ---- 3. the dialog: the style layer it shows, reopened, and the result's place --------------
# For docs/img/dialog.png (run.sh SHOT=...): a photo and a painting from samples/, the
# painting added as a layer on top as File > Open as Layers does; the dialog with defaults.
samples = os.path.join(os.environ['NS_SRC'], 'samples')
load = Gimp.RunMode.NONINTERACTIVE
doc = Gimp.file_load(load, Gio.File.new_for_path(os.path.join(samples, 'shipwreck.jpg')))
doc_photo = doc.get_layers()[0]
doc.insert_layer(Gimp.file_load_layer(load, doc, Gio.File.new_for_path(
    os.path.join(samples, 'starry_night.jpg'))), None, 0)
doc.set_selected_layers([doc_photo])
Gimp.Display.new(doc)
Gimp.displays_flush()
fx.reset_hook()
n = ask({'find': DIALOG}, SHOWN, {'sleep': 1}, {'grab': 'dialog.png'},
        {'grab_screen': 'dialog-1366x768.png'}, {'geometry': 'dialog'},
        {'resize': [700, 400]}, {'sleep': 1}, {'geometry': 'smaller'}, {'key': 'Escape'})
st, msg, dt = fx.run_plugin(doc, doc_photo, run_mode=Gimp.RunMode.INTERACTIVE)
r = done(n)
line = (shown_lines() or [None])[0]
fx.check('dialog (for the docs): the painting opened as a layer is offered, by name',
         r['ok'] and st == S.CANCEL and field(line, 'chooser-label') == 'starry_night.jpg',
         '%s %s' % (r, line))
# A small laptop's screen (run.sh: Xvfb at 1366x768): the dialog was 919 px tall (949 with a
# title bar) and would not shrink below 932, so OK was off the screen
SCREEN_H = int(os.environ.get('NS_SCREEN', '1366x768').split('x')[1])


def logged_box(reply, label):
    """[x, y, w, h] of a window that screen.py logged under label, else None."""
    box = next((row.split()[1:] for row in reply.get('log', [])
                if row.startswith(label + ' ')), None)
    return [int(v) for v in box] if box else None


box, smaller = logged_box(r, 'dialog'), logged_box(r, 'smaller')
fx.check('small screen: the whole dialog, its OK button included, is on the %d px screen '
         'with room for a title bar (40 px)' % SCREEN_H,
         box and box[1] + box[3] + 40 <= SCREEN_H, 'x y w h = %s' % box)
# it would not shrink below 932 px: asked for 400 px (as a user drags its corner), it must
# come near that (its options scroll)
fx.check('small screen: it can be made smaller (asked for 400 px tall: at most 500 px)',
         smaller and smaller[3] <= 500, 'x y w h = %s, GTK\'s least height %s'
         % (smaller, field(line, 'min-height')))
fx.check('small screen: "Blend in more styles" is folded away, as GIMP folds its filters\' '
         'Blending Options', field(line, 'more-styles-expanded') == 'False', line)
# the Style scale slider: 1.0 of 0.1..8 sat at the far left, where it read as the minimum
position = field(line, 'style-scale-position')
fx.check('style scale: its default 1.0 sits near the middle of the slider',
         position is not None and 0.35 <= float(position) <= 0.65, position)


# A photo in a large image and, on top of it as File > Open as Layers puts it, a small
# painting (the chooser drew a checkerboard for such a layer), named like a file.
big = Gimp.Image.new(800, 600, Gimp.ImageBaseType.RGB)
big.undo_disable()
photo = fx.new_layer(big, 'photo', 800, 600, fx.content_pixels(800, 600))
frida = fx.new_layer(big, 'frida_kahlo.jpg', 120, 90, painting_pixels(120, 90))
frida.set_offsets(600, 40)
big.undo_enable()
big.set_selected_layers([photo])
big_before = {layer: fx.pixels(layer) for layer in (photo, frida)}
Gimp.Display.new(big)
Gimp.displays_flush()

# a) first opening, the defaults: screenshot, then Cancel
fx.reset_hook()
n = ask({'find': DIALOG}, SHOWN, {'sleep': 1},
        {'grab': 'dialog-first.png'}, {'key': 'Escape'})
st, msg, dt = fx.run_plugin(big, photo, run_mode=Gimp.RunMode.INTERACTIVE)
r = done(n)
line = (shown_lines() or [None])[0]
fx.check('dialog: it opened and was grabbed', r['ok'], r)
fx.check('dialog: Escape cancels', st == S.CANCEL, '(%s) %s' % (st, msg))
fx.check('dialog: the painting on top is offered as the style layer',
         field(line, 'style-layer') == 'frida_kahlo.jpg', line)
fx.check('dialog: the chooser shows the style layer\'s name',
         field(line, 'chooser-label') == 'frida_kahlo.jpg', line)
shown = colour_pixels(os.path.join(fx.OUT, 'dialog-first.png'), MAGENTA)
fx.check('dialog: the chooser shows the style layer\'s thumbnail (its magenta on screen)',
         shown >= 300, '%d magenta pixels in the dialog' % shown)
fx.check('dialog: Quality: the preset and the size are active, the size by default the '
         'layer\'s own, with a note saying so',
         field(line, 'preset-sensitive') == 'True' and field(line, 'size-sensitive') == 'True'
         and field(line, 'size') == '0'
         and 'the layer\'s own size, 800 x 600 px' in (field(line, 'note') or ''), line)
fx.check('dialog: Strength and Style scale are sliders',
         field(line, 'strength-widget') == 'ScaleEntry' and
         field(line, 'style-scale-widget') == 'ScaleEntry', line)
fx.check('dialog: Strength goes from 0 (the photo) to 2 (bolder than the default)',
         field(line, 'strength-range') == '0..2', line)

# b) opened again (Fast), OK: the chooser is not blank this time either; the result goes
#    above the painting, not under it
fx.reset_hook()
n = ask({'find': DIALOG}, SHOWN, {'sleep': 1},
        {'grab': 'dialog-again.png'}, {'key': 'alt+o'})
st, msg, dt = fx.run_plugin(big, photo, run_mode=Gimp.RunMode.INTERACTIVE, style_layer=frida,
                            method='fast')
r = done(n)
line = (shown_lines() or [None])[0]
names = [layer.get_name() for layer in big.get_layers()]
fx.check('dialog again: OK runs the plug-in', r['ok'] and st == S.SUCCESS, '(%s) %s %s'
         % (st, msg, r))
shown = colour_pixels(os.path.join(fx.OUT, 'dialog-again.png'), MAGENTA)
fx.check('dialog again: the chooser shows name and thumbnail again',
         field(line, 'chooser-label') == 'frida_kahlo.jpg' and shown >= 300,
         '%s; %d magenta pixels' % (line, shown))
fx.check('dialog again: Fast: the preset and the size are greyed out',
         field(line, 'preset-sensitive') == 'False' and field(line, 'size-sensitive') == 'False'
         and "layer's own size" in (field(line, 'note') or ''), line)
fx.check('dialog again: the result is above the painting (visible), not under it',
         names == ['Neural Style (frida_kahlo.jpg)', 'frida_kahlo.jpg', 'photo'], names)
fx.check('dialog again: sources byte-identical',
         all(fx.pixels(l) == d for l, d in big_before.items()))

# ---- 4. a failed run keeps its values; the memory refusal speaks GIMP; Fit agrees ----------
# The real worker sees little free memory (as under a container's limit: nst_core reads the
# cgroup's figure, replaced here by the number in a file, which the test changes by 3 MB
# between the two runs, as free memory moves between a user's two tries).
free_file = os.path.join(fx.OUT, 'free-bytes')
with open(free_file, 'w') as f:
    f.write(str(950 * 10 ** 6))
lowmem_py = os.path.join(fx.OUT, 'lowmem.py')
with open(lowmem_py, 'w') as f:
    f.write('import runpy, sys\nimport nst_core.memory as memory\n'
            'memory._cgroup_free = lambda: int(open(%r).read())\n'
            "runpy.run_module('nst_core', run_name='__main__', alter_sys=True)\n" % free_file)
lowmem = os.path.join(fx.OUT, 'lowmem-python')
with open(lowmem, 'w') as f:
    f.write('#!/bin/sh\nshift 2\nexec %s %s "$@"\n' % (os.environ['NS_VENV_PY'], lowmem_py))
os.chmod(lowmem, 0o755)
mem = Gimp.Image.new(640, 640, Gimp.ImageBaseType.RGB)
mem_photo = fx.new_layer(mem, 'photo', 640, 640, fx.content_pixels(640, 640))
mem_paint = fx.new_layer(mem, 'painting', 64, 64, painting_pixels(64, 64))
mem.set_selected_layers([mem_photo])
Gimp.Display.new(mem)
Gimp.displays_flush()
set_python(lowmem)
try:
    # a) the dialog comes with the last successful run's values (Fast); the user types a seed
    fx.reset_hook()
    n = ask({'find': DIALOG}, SHOWN, {'key': 'alt+e'},
            {'key': 'ctrl+a'}, {'type': '4242'}, {'key': 'Tab'}, {'sleep': 0.5},
            {'key': 'alt+o'})
    st, msg, dt = fx.run_plugin(mem, mem_photo, run_mode=Gimp.RunMode.INTERACTIVE)
    r = done(n)
    line = (shown_lines() or [None])[0]
    fx.check('memory: the dialog came with the last successful run\'s values (Fast)',
             field(line, 'method') == 'fast', line)
    fx.check('memory: a layer too large for the free memory fails', r['ok'] and
             st == S.EXECUTION_ERROR and 'not enough memory' in msg, '(%s) %s %s'
             % (st, msg[:300], r))
    fx.check('memory: the message names the dialog\'s "Fit to memory"',
             '"Fit to memory"' in msg, msg[:500])
    fx.check('memory: and no command-line terms', '--fit' not in msg and 'fit=True' not in msg
             and 'output size or less' not in msg, msg[:500])
    said = re.search(r'(?:work at|fits now is) (\d+) px', msg)
    print('plugin.log of the refused run:\n  ' + '\n  '.join(fx.hook_log()), flush=True)
    # b) reopened: the failed run's values, not the last successful run's; tick Fit, OK
    with open(free_file, 'w') as f:
        f.write(str(953 * 10 ** 6))
    fx.reset_hook()
    n = ask({'find': DIALOG}, SHOWN, {'key': 'alt+t'}, {'sleep': 0.5},
            {'key': 'alt+o'})
    st, msg, dt = fx.run_plugin(mem, mem_photo, run_mode=Gimp.RunMode.INTERACTIVE)
    r = done(n)
    line = (shown_lines() or [None])[0]
    fx.check('memory: reopened after the failure, the dialog shows that run\'s seed (4242)',
             field(line, 'seed') == '4242', line)
    fx.check('memory: with "Fit to memory" ticked: SUCCESS', r['ok'] and st == S.SUCCESS,
             '(%s) %s %s' % (st, msg[:300], r))
    worked = [re.search(r'working at (\d+) px', line) for line in fx.hook_log()
              if line.startswith('text not enough memory')]
    worked = [m.group(1) for m in worked if m]
    fx.check('memory: the status names the size the refusal named, though 3 MB more are free',
             said and worked and worked[0] == said.group(1),
             'refusal: %s, status: %s' % (said.group(0) if said else None, worked))
    settings = os.path.join(Gimp.directory(), 'plug-in-settings')
    ours = sorted(f for f in os.listdir(settings) if 'neural-style' in f)
    fx.check('memory: the plug-in keeps its values where GIMP keeps them (one .last file; '
             'the style layers, which GIMP cannot keep, beside it)',
             [f for f in ours if f.endswith('.last')] == [
                 'GimpProcedureConfigRun-python-fu-neural-style.last']
             and set(ours) <= {'GimpProcedureConfigRun-python-fu-neural-style.last',
                               'neural-style-styles.json'}, ours)
    progress = [line for line in fx.hook_log()
                if line.startswith('progress ') and ' step 0/' not in line]
    fx.check('memory: the time left shows from the first step\'s end on',
             len(progress) > 1 and all(' left' in line for line in progress[1:]),
             progress[:3])
finally:
    os.replace(CONFIG + '.orig', CONFIG)
    shutil.copy(CONFIG, CONFIG + '.orig')

# ---- 5. two runs at once, in two images of this one GIMP ------------------------------------
# Run A (this script, through the PDB) holds its worker at a gate until run B's worker has
# started; screen.py starts run B from the GUI on the other image (the active one) while A
# waits: Search Actions (/), "Neural Style", Return, OK in the dialog. Both real workers then
# run at the same time, each from its own plug-in process. The gate is the only change to
# the worker: it records the job folders that exist when B's worker starts (after B's sweep
# of stale folders), so a sweep that took A's live folder would show.
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
ls -d %(tmp)s/neural-style-* > %(g)s-b-saw
touch %(g)s-b-started
exec %(py)s "$@"
''' % {'g': gate, 'py': real_python, 'tmp': tempfile.gettempdir()})
os.chmod(gate_python, 0o755)

pair = {}
for name in ('A', 'B'):                  # B's display last: B is the active image in the GUI
    im = Gimp.Image.new(96, 72, Gimp.ImageBaseType.RGB)
    im.undo_disable()
    painting = fx.new_layer(im, 'painting ' + name, 96, 72, fx.style_pixels(96, 72, 1))
    photo_ = fx.new_layer(im, 'photo ' + name, 96, 72, fx.content_pixels(96, 72))
    im.undo_enable()
    im.set_selected_layers([photo_])
    Gimp.Display.new(im)
    pair[name] = (im, photo_, painting, {l: fx.pixels(l) for l in (photo_, painting)})
Gimp.displays_flush()
(img_a, photo_a, painting_a, src_a), (img_b, photo_b, painting_b, src_b) = pair['A'], pair['B']

fx.reset_hook()
set_python(gate_python)
try:
    n = ask({'wait_log': '^worker-pid ', 'timeout': 120}, {'find': MAIN}, {'key': 'slash'},
            {'find': '^Search Actions$'}, {'type': 'Neural Style'}, {'sleep': 1},
            {'key': 'Return'}, {'find': DIALOG}, {'sleep': 1}, {'key': 'alt+o'})
    st, msg, dt = fx.run_plugin(img_a, photo_a, style_layer=painting_a, method='fast')
    r = done(n)
    deadline = time.time() + 180            # B may still be finishing (it logs after inserting)
    while (len(img_b.get_layers()) < 3 or sum(line.startswith('inserted layer')
                                              for line in fx.hook_log()) < 2) \
            and time.time() < deadline:
        time.sleep(0.2)
finally:
    os.replace(CONFIG + '.orig', CONFIG)
    shutil.copy(CONFIG, CONFIG + '.orig')
log = fx.hook_log()
print('plugin.log of the two runs:\n  ' + '\n  '.join(log), flush=True)
jobs = [line.split() for line in log if line.startswith('job-dir ')]
fx.check('two at once: the GUI started run B', r['ok'], r)
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
fx.check('two at once: no job folder left', job_folder_gone_within(2.0), fx.job_dirs())

# ---- 6. Reset to Factory Defaults, then OK -------------------------------------------------
# Factory defaults have no style layer: the dialog offers the painting again (OK failed here)
small = Gimp.Image.new(64, 48, Gimp.ImageBaseType.RGB)
small_photo = fx.new_layer(small, 'photo', 64, 48, fx.content_pixels(64, 48))
small_paint = fx.new_layer(small, 'painting', 64, 48, painting_pixels(64, 48))
small.set_selected_layers([small_photo])
Gimp.Display.new(small)
Gimp.displays_flush()
fx.reset_hook()
n = ask({'find': DIALOG}, SHOWN, {'key': 'alt+r'}, {'sleep': 1},
        {'grab': 'reset-menu.png'}, {'key': 'alt+f'}, {'sleep': 1.5},
        {'grab': 'reset-done.png'}, {'key': 'alt+o'})
st, msg, dt = fx.run_plugin(small, small_photo, run_mode=Gimp.RunMode.INTERACTIVE)
r = done(n, 300)
log = fx.hook_log()
fx.check('reset: Reset to Factory Defaults, then OK: SUCCESS', r['ok'] and st == S.SUCCESS,
         '(%s) %s %s' % (st, msg, r))
fx.check('reset: the factory defaults ran (Quality) with the painting offered again',
         any(line.startswith('dialog ok=True style-layer=painting method=quality') for line in log),
         [line for line in log if line.startswith('dialog ')])
shown = colour_pixels(os.path.join(fx.OUT, 'reset-done.png'), MAGENTA)
fx.check('reset: after the reset the chooser shows the painting', shown >= 200,
         '%d magenta pixels' % shown)

# ---- 7. closing the image during a run (Discard Changes) ------------------------------------
# Started from the GUI as a user does (Search Actions, OK in the dialog), not through the
# PDB: a PDB caller's call holds the image alive until the call returns, GIMP's menus do not.
# No last values (and a new image, without their parasite): the dialog comes with the
# defaults, Quality, which lasts; and a large photo.
settings = os.path.join(Gimp.directory(), 'plug-in-settings')
for name in os.listdir(settings):
    if 'neural-style' in name:
        os.remove(os.path.join(settings, name))
closing = Gimp.Image.new(2400, 1800, Gimp.ImageBaseType.RGB)
c_paint = fx.new_layer(closing, 'painting', W, H, fx.style_pixels(W, H, 1))
c_photo = Gimp.Layer.new(closing, 'photo', 2400, 1800, Gimp.ImageType.RGBA_IMAGE, 100.0,
                         Gimp.LayerMode.NORMAL)
closing.insert_layer(c_photo, None, 1)
c_photo.fill(Gimp.FillType.WHITE)
closing.set_selected_layers([c_photo])
Gimp.Display.new(closing)                # the last display: the active image
Gimp.displays_flush()
fx.reset_hook()
mark = len(gui_log())
n = ask({'find': MAIN}, {'key': 'slash'}, {'find': '^Search Actions$'},
        {'type': 'Neural Style'}, {'sleep': 1}, {'key': 'Return'}, {'find': DIALOG},
        {'sleep': 1}, {'key': 'alt+o'}, {'wait_log': '^progress 0\\.0[1-9]', 'timeout': 180},
        {'find': MAIN}, {'key': 'ctrl+w'}, {'find': '^Close ', 'timeout': 10},
        {'key': 'alt+d'})
r = done(n, 240)
closed_at = time.time()
END = ('ended quietly', 'inserted layer', 'failed', 'cancelled')
ended = None
while time.time() - closed_at < 60:
    ended = next((line for line in fx.hook_log() if line.startswith(END)), None)
    if ended:
        break
    time.sleep(0.05)
took = time.time() - closed_at
pids = fx.logged_worker_pids()
time.sleep(2)                            # let any late error messages arrive
after = gui_log()[mark:]
fx.check('close: the image was closed (Discard Changes) during the run',
         r['ok'] and not closing.is_valid(), r)
fx.check('close: the run ended at once, quietly', ended and ended.startswith(
    'ended quietly') and took < 3.0, '%s, %.1f s after the close' % (ended, took))
fx.check('close: the worker is gone', pids and fx.gone_within(pids[0], 1.0), pids)
fx.check('close: no job folder left', job_folder_gone_within(2.0), fx.job_dirs())
cascade = [line for line in after.splitlines() if re.search(
    r'Calling error|invalid ID|out of range|Too many error messages|constructor returned '
    r'NULL|Traceback|CRITICAL', line)]
fx.check('close: no error messages from GIMP or the plug-in', not cascade, cascade[:6])

# ---- 8. the warm worker's previews: the dialog's, and Quality's picture while it forms ----
# The user's default (keep_alive_seconds 600). A photo and a painting from samples/ in an
# image of its own; its display is presented before the Ctrl+Z (a display a plug-in opens is
# shown, but GIMP's keys go on acting on the image the user last worked in).
fx.set_config(CONFIG, keep_alive_seconds=600)
pv = Gimp.file_load(load, Gio.File.new_for_path(os.path.join(samples, 'coffee.jpg')))
pv_photo = pv.get_layers()[0]
pv.insert_layer(Gimp.file_load_layer(load, pv, Gio.File.new_for_path(
    os.path.join(samples, 'the_scream.jpg'))), None, 0)
pv.set_selected_layers([pv_photo])
print('undo enabled on the loaded image: %s' % pv.undo_is_enabled(), flush=True)
while not pv.undo_is_enabled():     # as File > Open leaves it (the PDB's load may not)
    pv.undo_enable()
pv_display = Gimp.Display.new(pv)
Gimp.displays_flush()
pv_before = fx.snapshot(pv)

# a) the dialog's Preview: Alt+P renders the method chosen (Quality, the factory default:
#    its first steps at the preview's size) on the layer; a new Strength renders again
fx.reset_hook()
n = ask({'find': DIALOG}, SHOWN, {'sleep': 1}, {'grab': 'dialog-preview-off.png'}, {'key': 'alt+p'},
        {'wait_log': '^dialog preview 1 ', 'timeout': 180}, {'sleep': 0.5},
        {'grab': 'dialog-preview.png'}, {'key': 'alt+n'}, {'key': 'ctrl+a'}, {'type': '0.3'},
        {'key': 'Tab'}, {'wait_log': '^dialog preview 2 ', 'timeout': 120},
        {'key': 'Escape'})
st, msg, dt = fx.run_plugin(pv, pv_photo, run_mode=Gimp.RunMode.INTERACTIVE)
r = done(n)
drawn = [line.split() for line in fx.hook_log() if re.match(r'dialog preview \d+ ', line)]
fx.check('dialog preview: drawn on Alt+P, and another picture once Strength changed',
         r['ok'] and len(drawn) >= 2 and drawn[0][-1] != drawn[-1][-1],
         (r, drawn, fx.hook_log()[-6:]))
# it showed Fast's picture whatever the method, and nothing said so
fx.check('dialog preview: with Quality chosen it previews Quality (not Fast)',
         drawn and all(len(d) > 5 and d[4] == 'quality' for d in drawn), drawn)
said = [line for line in fx.hook_log() if line.startswith('dialog preview says ')]
fx.check('dialog preview: the line under it says it shows Quality\'s first steps',
         said and "Quality's first" in said[-1], said[-1:])
black = colour_pixels(os.path.join(fx.OUT, 'dialog-preview-off.png'), (0, 0, 0), 3) \
    if r['ok'] else None
fx.check('dialog preview: off, it shows the layer (GIMP\'s own fills it black)',
         black is not None and black < 2000, '%s pure black pixels' % black)
fx.check('dialog preview: Cancel leaves the image as it was',
         st == S.CANCEL and fx.snapshot(pv) == pv_before, st)

# b) Quality: the picture while it forms, in a window of its own; then one Ctrl+Z
fx.reset_hook()
n = ask({'find': DIALOG}, SHOWN, {'key': 'alt+o'},
        {'wait_log': '^preview 2 ', 'timeout': 300}, {'find': ': preview$'}, {'sleep': 0.5},
        {'grab': 'preview.png'})
st, msg, dt = fx.run_plugin(pv, pv_photo, run_mode=Gimp.RunMode.INTERACTIVE)
r = done(n)
log = fx.hook_log()
pictures = [line.split() for line in log if re.match(r'preview \d+ ', line)]
fx.check('preview: the run succeeded', st == S.SUCCESS, msg)
fx.check('preview: the window appeared and the picture changed while it formed',
         r['ok'] and len(pictures) >= 2 and len({p[-1] for p in pictures}) >= 2,
         (r, pictures[:4]))
fx.check('preview: its window closed at the end',
         any(line.startswith('preview window closed') for line in log) and
         done(ask({'gone': ': preview$', 'timeout': 10}))['ok'], log[-4:])
fx.check('preview: one layer added', len(pv.get_layers()) == 3,
         [layer.get_name() for layer in pv.get_layers()])
pv_display.present()
Gimp.displays_flush()
r = done(ask({'find': MAIN}, {'key': 'ctrl+z'}))
deadline = time.time() + 5                   # let GIMP handle the key press
while len(pv.get_layers()) != 2 and time.time() < deadline:
    time.sleep(0.1)
time.sleep(0.5)                              # ...and whatever a second undo step would do
def _windows():
    import subprocess
    ids = subprocess.run(['xdotool', 'search', '--onlyvisible', '--name', '.'],
                         capture_output=True, text=True).stdout.split()
    return [subprocess.run(['xdotool', 'getwindowname', i], capture_output=True,
                           text=True).stdout.strip() for i in ids]


fx.check('preview: one Ctrl+Z restores the image exactly', r['ok'] and
         fx.snapshot(pv) == pv_before, (r, [layer.get_name() for layer in pv.get_layers()],
                                        _windows(), [(i.get_name(), len(i.get_layers()))
                                                     for i in Gimp.get_images()]))
# c) the Preview toggle is remembered after a cancelled run too (GIMP keeps the values of
#    successful runs only): ticked, OK, the run cancelled; reopened, it is ticked and renders
fx.reset_hook(cancel_after=2)
n = ask({'find': DIALOG}, SHOWN, {'key': 'alt+p'}, {'wait_log': '^dialog preview 1 ',
                                                    'timeout': 180},
        {'key': 'alt+o'})
st, msg, dt = fx.run_plugin(pv, pv_photo, run_mode=Gimp.RunMode.INTERACTIVE)
r = done(n)
fx.check('preview toggle: ticked, OK, the run cancelled', r['ok'] and st == S.CANCEL,
         '(%s) %s %s' % (st, msg, r))
fx.reset_hook()
n = ask({'find': DIALOG}, SHOWN,
        {'wait_log': '^dialog preview 1 ', 'timeout': 180, 'optional': True},
        {'key': 'Escape'})
st, msg, dt = fx.run_plugin(pv, pv_photo, run_mode=Gimp.RunMode.INTERACTIVE)
r = done(n)
fx.check('preview toggle: reopened after the cancelled run, it is still ticked and renders',
         r['ok'] and any(re.match(r'dialog preview 1 ', l) for l in fx.hook_log()),
         (r, fx.hook_log()[-4:]))
fx.set_config(CONFIG, keep_alive_seconds=0)

# ---- 10. the second run: the painting offered again, Repeat, the newest result on top ---
# GIMP cannot keep a layer among a filter's last values: the dialog offered the previous
# result as the style (the topmost other layer), also after Reset to Factory Defaults, and
# Filters > Repeat always failed. A fresh start: no last values.
for name in os.listdir(settings):
    if 'neural-style' in name:
        os.remove(os.path.join(settings, name))
sec = Gimp.Image.new(160, 120, Gimp.ImageBaseType.RGB)
sec_photo = fx.new_layer(sec, 'photo', 160, 120, fx.content_pixels(160, 120))
sec_paint = fx.new_layer(sec, 'magenta.jpg', 160, 120, painting_pixels(160, 120))
sec.set_selected_layers([sec_photo])
sec_display = Gimp.Display.new(sec)          # the last display: the active image
Gimp.displays_flush()


def inserted_within(seconds, count=1):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if sum(line.startswith('inserted layer') for line in fx.hook_log()) >= count:
            return True
        if any(line.startswith(('failed', 'cancelled')) for line in fx.hook_log()):
            return False
        time.sleep(0.2)
    return False


def tree(image):
    return [layer.get_name() for layer in image.get_layers()]


# a) the first run, started from the menus (Search Actions), as a user does: Fast, OK
fx.reset_hook()
r = done(ask({'find': MAIN}, {'key': 'slash'}, {'find': '^Search Actions$'},
             {'type': 'Neural Style'}, {'sleep': 1}, {'key': 'Return'}, {'find': DIALOG},
             SHOWN, {'key': 'alt+m'}, {'key': 'Down'}, {'sleep': 0.5}, {'key': 'alt+o'}))
fx.check('second run: the first run (Fast, from the menus) added its result',
         r['ok'] and inserted_within(120) and tree(sec) == [
             'Neural Style (magenta.jpg)', 'magenta.jpg', 'photo'], (r, tree(sec),
                                                                    fx.hook_log()[-4:]))
# b) the dialog again: the painting, not the result that now lies on top of it
fx.reset_hook()
n = ask({'find': DIALOG}, SHOWN, {'sleep': 1}, {'grab_screen': 'second-run-dialog.png'},
        {'key': 'Escape'})
st, msg, dt = fx.run_plugin(sec, sec_photo, run_mode=Gimp.RunMode.INTERACTIVE)
r = done(n)
line = (shown_lines() or [None])[0]
fx.check('second run: the dialog offers the painting again, not the first result',
         r['ok'] and field(line, 'chooser-label') == 'magenta.jpg', line)
# c) Reset to Factory Defaults: the painting again, not the result
fx.reset_hook()
n = ask({'find': DIALOG}, SHOWN, {'key': 'alt+r'}, {'sleep': 1}, {'key': 'alt+f'},
        {'sleep': 1.5}, {'key': 'Escape'})
st, msg, dt = fx.run_plugin(sec, sec_photo, run_mode=Gimp.RunMode.INTERACTIVE)
r = done(n)
last = [line for line in fx.hook_log() if line.startswith('dialog ok=')]
fx.check('second run: after Reset to Factory Defaults the painting is offered, not a result',
         r['ok'] and last and ' style-layer=magenta.jpg ' in last[-1], last)
# d) Filters > Repeat (Ctrl+F): the last values, the painting included; the new result goes
#    above the earlier one (it went under it, invisible)
fx.reset_hook()
r = done(ask({'find': MAIN}, {'key': 'ctrl+f'}))
ok = r['ok'] and inserted_within(120)
names = tree(sec)
fx.check('repeat: Ctrl+F runs with the last values, the painting included',
         ok and any(line.startswith("repeat with style layers ['magenta.jpg'")
                    for line in fx.hook_log()), (r, fx.hook_log()[-5:]))
fx.check('repeat: the new result lies above the earlier one', len(names) == 4 and
         names[0].startswith('Neural Style (magenta.jpg) ') and
         names[1:] == ['Neural Style (magenta.jpg)', 'magenta.jpg', 'photo'], names)
r = done(ask({'find': MAIN}, {'sleep': 1}, {'grab_screen': 'second-run.png'}))
# e) a new image with the same painting opened again (its first image closed; opened as an
#    image its layer is "Background"), a sketch on top: the dialog offers the painting the
#    last run used, not the topmost layer
sec_display.delete()
sec.delete()
third = Gimp.Image.new(160, 120, Gimp.ImageBaseType.RGB)
third_photo = fx.new_layer(third, 'photo', 160, 120, fx.content_pixels(160, 120))
third_paint = fx.new_layer(third, 'Background', 160, 120, painting_pixels(160, 120))
third_sketch = fx.new_layer(third, 'sketch', 160, 120, fx.style_pixels(160, 120, 1))
third.set_selected_layers([third_photo])
Gimp.Display.new(third)
Gimp.displays_flush()
fx.reset_hook()
n = ask({'find': DIALOG}, SHOWN, {'key': 'Escape'})
st, msg, dt = fx.run_plugin(third, third_photo, run_mode=Gimp.RunMode.INTERACTIVE)
r = done(n)
line = (shown_lines() or [None])[0]
fx.check('new image: the same painting opened again is offered (not the sketch on top)',
         r['ok'] and field(line, 'chooser-label') == 'Background', line)
# f) Repeat once that painting is gone too: refused, naming it
third.remove_layer(third_paint)
before = fx.snapshot(third)
st, msg, dt = fx.run_plugin(third, third_photo, run_mode=Gimp.RunMode.WITH_LAST_VALS)
fx.check('repeat without the painting: refused, naming the painting and what to do',
         st == S.EXECUTION_ERROR and '"magenta.jpg"' in msg and 'not open any more' in msg,
         '(%s) %s' % (st, msg))
fx.check('repeat without the painting: the image as it was', fx.snapshot(third) == before)

# ---- 11. Trained model without a file: OK waits, and the style options are greyed out -----
fx.reset_hook()
n = ask({'find': DIALOG}, SHOWN, {'key': 'alt+m'}, {'key': 'End'}, {'sleep': 1},
        {'key': 'alt+o'}, {'sleep': 2}, {'find': DIALOG, 'timeout': 3},
        {'grab': 'trained-no-file.png'}, {'key': 'Escape'})
st, msg, dt = fx.run_plugin(third, third_photo, run_mode=Gimp.RunMode.INTERACTIVE)
r = done(n)
states = [line for line in fx.hook_log() if line.startswith('dialog-state ')
          and field(line, 'method') == 'trained']
fx.check('trained, no file: OK does not close the dialog to show an error',
         r['ok'] and st == S.CANCEL and 'trained model' not in msg, '(%s) %s %s' % (st, msg, r))
fx.check('trained, no file: OK greyed out, a line says to choose the file',
         states and field(states[-1], 'ok-sensitive') == 'False'
         and field(states[-1], 'model-note') == 'True', states[-1:])
fx.check('trained: the style layer and the blend section are greyed out',
         states and field(states[-1], 'style-layer-sensitive') == 'False'
         and field(states[-1], 'more-styles-sensitive') == 'False', states[-1:])

# ---- 12. Help: the plug-in's own page, not GIMP's "user manual is missing" -------------------
# A stand-in web browser (GIMP's default help browser here) registered for HTML pages: it
# writes the address it was asked to open into the test log.
home = os.environ['HOME']
browser = os.path.join(fx.OUT, 'fake-browser')
with open(browser, 'w') as f:
    f.write('#!/bin/sh\necho "browser $*" >> %s/plugin.log\n' % fx.HOOK)
os.chmod(browser, 0o755)
os.makedirs(os.path.join(home, '.local', 'share', 'applications'), exist_ok=True)
with open(os.path.join(home, '.local', 'share', 'applications', 'fake-browser.desktop'),
          'w') as f:
    f.write('[Desktop Entry]\nType=Application\nName=Fake browser\nExec=%s %%u\n'
            'MimeType=text/html;x-scheme-handler/http;x-scheme-handler/https;\n' % browser)
os.makedirs(os.path.join(home, '.config'), exist_ok=True)
with open(os.path.join(home, '.config', 'mimeapps.list'), 'w') as f:
    f.write('[Default Applications]\ntext/html=fake-browser.desktop\n'
            'x-scheme-handler/http=fake-browser.desktop\n'
            'x-scheme-handler/https=fake-browser.desktop\n')
page = os.path.join(os.environ['NS_PLUGIN_DIR'], 'help', 'en', 'index.html')
# F1 through XTest: forky's xdotool sends "key F1" as Alt+F1 (screen.py, plain_key).
# What a key opens is told apart from what was there before it: the windows that appear
# after the key (GIMP's "GIMP user manual is missing", for a plug-in without help of its
# own; it came within a second of a help request), and GIMP's messages after it (a help
# domain whose pages are missing: "The help pages for '...' are not available", in gui.log
# under -c). The browser or a new window is waited for (20 s), then 3 s more; each new
# window is closed (Escape) before the dialog is, so a failure leaves nothing open for the
# next key or test, and a missing page is a FAIL, not a GIMP left waiting.
for how, key in (('the Help button (Alt+H)', {'key': 'alt+h'}), ('F1', {'plain_key': 'F1'})):
    fx.reset_hook()
    mark = len(gui_log())
    n = ask({'find': DIALOG}, SHOWN, {'mark_windows': True}, key,
            {'wait_log': '^browser ', 'or_new_window': True, 'timeout': 20,
             'optional': True}, {'sleep': 3},
            {'new_windows': 'opened'}, {'close_new': True},
            {'find': DIALOG}, {'key': 'Escape'})
    st, msg, dt = fx.run_plugin(third, third_photo, run_mode=Gimp.RunMode.INTERACTIVE)
    r = done(n)
    opened = [line.split(' ', 1)[1].strip() for line in fx.hook_log()
              if line.startswith('browser ')]
    windows = [row for row in r.get('log', []) if row.startswith('opened ')]
    said = [line for line in gui_log()[mark:].splitlines()
            if not line.startswith(('PASS', 'FAIL')) and re.search(
                r'help pages for|Help ID .* unknown|user manual is|help browser is', line, re.I)]
    fx.check('help: %s: the harness pressed it and closed the dialog' % how,
             r['ok'] and st == S.CANCEL, '(%s) %s %s' % (st, msg, r))
    fx.check('help: %s in the dialog opens the help page that ships with the plug-in, once'
             % how, len(opened) == 1 and opened[0] in ('file://' + page, page)
             and os.path.exists(page), (opened, page, os.path.exists(page)))
    fx.check('help: %s: no other window (GIMP\'s "user manual is missing") and no message '
             'that the help is missing' % how, not windows and not said, (windows, said))
text = open(page, encoding='utf-8').read() if os.path.exists(page) else ''
fx.check('help: the page describes this filter\'s dialog',
         'Neural Style' in text and 'Style layer' in text and 'Repeat' in text, page)


# ---- 13. the dialog's labels carry mnemonics; GIMP could keep the last values -----------
fx.check_dialog_log(gui_log())
os.remove(CONFIG + '.orig')
fx.finish()
