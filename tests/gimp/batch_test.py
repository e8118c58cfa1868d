# Runs INSIDE gimp-console (python-fu-eval): tests/gimp/run.sh passes
#   -b "exec(open('.../batch_test.py').read())"
# The plug-in was installed by install.py into the throw-away profile; the worker is the real
# nst_core in the venv install.py made, with the real weights, at small sizes.
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.environ['NS_TEST'])
import fixtures as fx  # noqa: E402
from gi.repository import Gimp  # noqa: E402

CONFIG = os.path.join(os.environ['NS_PLUGIN_DIR'], 'neural_style.json')
S = Gimp.PDBStatusType


# ---- fixtures: photos in their images, the paintings in another ------------------------
def scene(w, h, offset):
    """An image with a photo layer (at an offset, with a transparent edge) above a background."""
    image = Gimp.Image.new(200, 160, Gimp.ImageBaseType.RGB)
    photo = fx.new_layer(image, 'photo', w, h, fx.content_pixels(w, h))
    photo.set_offsets(*offset)
    background = fx.new_layer(image, 'background', 200, 160,
                              bytes((200, 200, 200, 255)) * (200 * 160))
    image.reorder_item(background, None, 1)
    image.set_selected_layers([photo])
    return image, photo, background


GEOMETRY = (128, 96, (30, 20))          # photo for Fast and the other checks
SMALL = (96, 72, (50, 40))              # photo for Quality: ~half the pixels, half the time
CW, CH, OFFSET = GEOMETRY
img, content, below = scene(*GEOMETRY)
qimg, qcontent, qbelow = scene(*SMALL)
styles_img = Gimp.Image.new(120, 120, Gimp.ImageBaseType.RGB)
style = fx.new_layer(styles_img, 'strokes', 120, 120, fx.style_pixels(120, 120, 0))
style2 = fx.new_layer(styles_img, 'other strokes', 120, 120, fx.style_pixels(120, 120, 1))
originals = {layer: fx.pixels(layer)
             for layer in (content, below, qcontent, qbelow, style, style2)}
names0 = [layer.get_name() for layer in img.get_layers()]
fx.check('fixture: photo above background', names0 == ['photo', 'background'], names0)


def sources_untouched(label):
    same = all(fx.pixels(layer) == data for layer, data in originals.items())
    fx.check('%s: source layers byte-identical' % label, same)


def check_result(label, status, message, seconds, image=None, photo=None, geometry=GEOMETRY,
                 style_name='strokes'):
    image, photo = image or img, photo or content
    cw, ch, offset = geometry
    fx.check('%s: SUCCESS' % label, status == S.SUCCESS, '(%s) %s' % (status, message))
    print('TIME %s %.1f s' % (label, seconds), flush=True)
    layers = image.get_layers()
    names = [layer.get_name() for layer in layers]
    fx.check('%s: exactly one new layer, directly above the photo' % label,
             len(layers) == 3 and names[1:] == ['photo', 'background'], names)
    new = layers[0]
    fx.check('%s: named "Neural Style (%s)"' % (label, style_name),
             new.get_name() == 'Neural Style (%s)' % style_name, new.get_name())
    fx.check('%s: same size and offsets as the photo' % label,
             (new.get_width(), new.get_height(), tuple(new.get_offsets()[1:])) ==
             (cw, ch, offset), (new.get_width(), new.get_height(), new.get_offsets()[1:]))
    got, src = fx.pixels(new), originals[photo]
    fx.check('%s: alpha is the photo\'s alpha' % label, got[3::4] == src[3::4])
    diff = fx.mean_abs_diff(got, src)
    fx.check('%s: pixels differ from the photo' % label, diff > 8, 'mean |diff| %.1f' % diff)
    ok, text = fx.keeps_structure(got, src, cw, ch)
    fx.check('%s: keeps the photo\'s structure' % label, ok, text)
    fx.save_raw(label, new)
    sources_untouched(label)
    fx.check('%s: job folder removed' % label, fx.job_dirs() == [], fx.job_dirs())
    return new


def expect_failure(label, status, message, must_contain, layers_before):
    fx.check('%s: error status' % label, status == S.EXECUTION_ERROR, '(%s)' % status)
    fx.check('%s: message says %r' % (label, must_contain), must_contain in message,
             repr(message[:400]))
    fx.check('%s: no layer added' % label, len(img.get_layers()) == layers_before,
             [layer.get_name() for layer in img.get_layers()])
    fx.check('%s: job folder removed' % label, fx.job_dirs() == [], fx.job_dirs())


def with_config(change):
    """Run with neural_style.json changed (restored afterwards)."""
    class Swap:
        def __enter__(self):
            shutil.copy(CONFIG, CONFIG + '.orig')
            change()

        def __exit__(self, *exc):
            os.replace(CONFIG + '.orig', CONFIG)
    return Swap()


def set_python(path):
    import json
    with open(CONFIG) as f:
        cfg = json.load(f)
    cfg['python'] = path
    with open(CONFIG, 'w') as f:
        json.dump(cfg, f)


# ---- 1. registration --------------------------------------------------------------------
pdb = Gimp.get_pdb()
proc = pdb.lookup_procedure(fx.PROC)
fx.check('procedure registered', proc is not None)
fx.check('menu Filters > Artistic > Neural Style...',
         proc.get_menu_paths() == ['<Image>/Filters/Artistic'] and
         proc.get_menu_label() == 'Neural Style...',
         (proc.get_menu_paths(), proc.get_menu_label()))
fx.check('RGB and grayscale images', proc.get_image_types() == 'RGB*, GRAY*',
         proc.get_image_types())
args = {p.name: p for p in proc.get_arguments()}
declared = ['run-mode', 'image', 'drawables', 'style-layer', 'style-layer-2', 'style-weight-2',
            'style-layer-3', 'style-weight-3', 'trained-model', 'method', 'strength',
            'style-scale', 'preserve-colors', 'size', 'fit', 'preset', 'device', 'seed']
# where each style paints (issue 24; tests/gimp/regions_test.py), after the older arguments
REGIONS = ['style-region', 'style-channel', 'style-region-2', 'style-channel-2',
           'style-region-3', 'style-channel-3']
declared += REGIONS
fx.check('declared arguments', list(args) == declared, list(args))
expected = fx.expected_options()
for name, spec in args.items():
    if name in declared[:9] or name in REGIONS:
        continue
    want = expected.get(name)
    if not fx.check('argument %s is an nst_core.stylize option' % name, want is not None):
        continue
    if want['choices']:
        choice = Gimp.param_spec_choice_get_choice(spec)
        got = (Gimp.param_spec_choice_get_default(spec), choice.list_nicks())
        fx.check('argument %s: default and choices = stylize()\'s' % name,
                 got == (want['default'], want['choices']), got)
    else:
        fx.check('argument %s: default = stylize()\'s' % name,
                 spec.get_default_value() == want['default'],
                 (spec.get_default_value(), want['default']))
    if 'range' in want:
        fx.check('argument %s: range = stylize()\'s' % name,
                 [spec.minimum, spec.maximum] == want['range'],
                 ([spec.minimum, spec.maximum], want['range']))

# ---- 2. Fast and Quality, each adds one layer ---------------------------------------------
fx.reset_hook()
st, msg, dt = fx.run_plugin(img, content, style_layer=style, method='fast', size=0)
new = check_result('fast', st, msg, dt)
fx.check('fast: progress reached GIMP',
         any(line.startswith('progress ') for line in fx.hook_log()), fx.hook_log()[-3:])
img.remove_layer(new)

fx.reset_hook()
# bolder than the default (issue 25): strength above 1 reaches the worker and runs
st, msg, dt = fx.run_plugin(qimg, qcontent, style_layer=style, method='quality', preset='draft',
                            size=96, strength=1.5)
new = check_result('quality', st, msg, dt, qimg, qcontent, SMALL)
progress = [line for line in fx.hook_log() if line.startswith('progress ')]
fx.check('quality: progress shows stage, steps and ETA', progress and
         'step' in progress[-1] and any(' left' in line for line in progress), progress[-2:])
for layer in (qcontent, qbelow):
    del originals[layer]
qimg.delete()

# two styles blended, colours preserved, selection -> layer mask
img.select_rectangle(Gimp.ChannelOps.REPLACE, OFFSET[0] + 20, OFFSET[1] + 10, 50, 40)
st, msg, dt = fx.run_plugin(img, content, style_layer=style, style_layer_2=style2,
                            style_weight_2=0.5, method='fast', preserve_colors='luminance')
fx.check('fast, 2 styles, selection: SUCCESS', st == S.SUCCESS, msg)
new = img.get_layers()[0]
mask = new.get_mask()
fx.check('selection: result has a layer mask', mask is not None)
if mask is not None:
    m = fx.pixels(mask, 'Y u8')
    inside, outside = m[(10 + 20) * CW + 20 + 25], m[5 * CW + 5]
    fx.check('selection: mask is the selection', inside == 255 and outside == 0,
             (inside, outside))
Gimp.Selection.none(img)
sources_untouched('2 styles')
img.remove_layer(new)

# grayscale image: result is a grayscale layer, style from the RGB image
gray = Gimp.Image.new(64, 48, Gimp.ImageBaseType.GRAY)
gl = Gimp.Layer.new(gray, 'gray photo', 64, 48, Gimp.ImageType.GRAYA_IMAGE, 100.0,
                    Gimp.LayerMode.NORMAL)
gray.insert_layer(gl, None, 0)
fx.fill(gl, fx.content_pixels(64, 48))
st, msg, dt = fx.run_plugin(gray, gl, style_layer=style, method='fast')
fx.check('grayscale: SUCCESS, one gray layer', st == S.SUCCESS and len(gray.get_layers()) == 2
         and gray.get_layers()[0].is_gray(), msg)
gray.delete()

# ---- 3. failures: clear error, no layer, nothing left behind -------------------------------
n = len(img.get_layers())
with with_config(lambda: set_python('/nonexistent/bin/python3')):
    st, msg, dt = fx.run_plugin(img, content, style_layer=style, method='fast')
expect_failure('bad interpreter', st, msg, 'Cannot start the worker interpreter', n)

crash = os.path.join(os.environ['NS_OUT'], 'crashing-python')
with open(crash, 'w') as f:
    f.write('#!/bin/sh\necho "RuntimeError: simulated crash in the worker" >&2\nexit 1\n')
os.chmod(crash, 0o755)
with with_config(lambda: set_python(crash)):
    st, msg, dt = fx.run_plugin(img, content, style_layer=style, method='fast')
expect_failure('worker exits 1', st, msg, 'simulated crash in the worker', n)

st, msg, dt = fx.run_plugin(img, content, style_layer=style, method='fast', device='cuda')
expect_failure('device not available (real worker)', st, msg, 'not available', n)
fx.check('device not available: the message names the dialog\'s "Device", not the '
         'command line\'s values', 'set "Device" to CPU' in msg and 'choose auto' not in msg,
         repr(msg[:300]))

with with_config(lambda: os.remove(CONFIG)):
    st, msg, dt = fx.run_plugin(img, content, style_layer=style, method='fast')
expect_failure('no config', st, msg, 'install.py', n)

st, msg, dt = fx.run_plugin(img, content, method='fast')
fx.check('no style layer: error naming it', st != S.SUCCESS and 'style layer' in msg, msg)

# ---- 4. cancel ----------------------------------------------------------------------------
# a) the plug-in's own cancel path (the test hook presses "Cancel" at the 3rd progress event)
fx.reset_hook(cancel_after=3)
st, msg, dt = fx.run_plugin(img, content, style_layer=style, method='quality', preset='best',
                            size=128)
pids = fx.logged_worker_pids()
fx.check('cancel: CANCEL status', st == S.CANCEL, '(%s) %s' % (st, msg))
fx.check('cancel: no layer', len(img.get_layers()) == n)
fx.check('cancel: worker process gone', pids and not fx.alive(pids[0]), pids)
fx.check('cancel: job folder removed', fx.job_dirs() == [], fx.job_dirs())
fx.check('cancel: returned soon after the cancel', 'cancel requested' in fx.hook_log(),
         '%.1f s in all' % dt)
sources_untouched('cancel')

# b) GIMP's Cancel button: GIMP kills the plug-in. Simulate that with SIGKILL from outside;
#    the worker must notice (its stdin closes) and stop within a second or two.
fx.reset_hook()
killer = subprocess.Popen([sys.executable if os.path.exists(sys.executable) else '/usr/bin/python3',
                           '-c', r'''
import os, signal, sys, time
log = os.path.join(sys.argv[1], 'plugin.log')
deadline = time.time() + 120
while time.time() < deadline:
    lines = open(log).read().splitlines() if os.path.exists(log) else []
    if any(l.startswith('progress ') for l in lines):
        pid = int([l for l in lines if ' plugin-pid ' in l][0].split()[3])
        os.kill(pid, signal.SIGKILL)
        print('killed plug-in', pid, flush=True)
        break
    time.sleep(0.05)
''', fx.HOOK])
st, msg, dt = fx.run_plugin(img, content, style_layer=style, method='quality', preset='best',
                            size=128)
killer.wait(10)
pids = fx.logged_worker_pids()
fx.check('killed plug-in: no SUCCESS', st != S.SUCCESS, '(%s) %s' % (st, msg))
fx.check('killed plug-in: no layer', len(img.get_layers()) == n)
fx.check('killed plug-in: worker stops within 2 s', pids and fx.gone_within(pids[0], 2.0),
         pids)
deadline = time.time() + 3
while fx.job_dirs() and time.time() < deadline:
    time.sleep(0.05)
fx.check('killed plug-in: its job folder is gone within 3 s (the janitor), no run needed',
         fx.job_dirs() == [], fx.job_dirs())
fx.reset_hook()
st, msg, dt = fx.run_plugin(img, content, style_layer=style, method='fast')
fx.check('next run: SUCCESS', st == S.SUCCESS, msg)
fx.check('next run: no job folder left', fx.job_dirs() == [], fx.job_dirs())
sources_untouched('after kill')
if st == S.SUCCESS:
    img.remove_layer(img.get_layers()[0])

# ---- 5. where the result goes: above the topmost of the photo and its style layers ------
# (in the photo's group; style layers of other images or outside that group do not count)
def placed(label, build, expect):
    im = Gimp.Image.new(64, 48, Gimp.ImageBaseType.RGB)
    layers = build(im)
    im.set_selected_layers([layers['photo']])
    props = dict(method='fast', style_layer=layers['style'])
    if 'style2' in layers:
        props.update(style_layer_2=layers['style2'], style_weight_2=1.0)
    st, msg, dt = fx.run_plugin(im, layers['photo'], **props)
    fx.check('%s: SUCCESS' % label, st == S.SUCCESS, msg)

    def tree(items):
        return [(i.get_name(), tree(i.get_children())) if i.is_group() else i.get_name()
                for i in items]
    got = tree(im.get_layers())
    fx.check('%s: result at its place' % label, got == expect, got)
    im.delete()


def layer(im, name, parent=None, position=0, seed=0):
    new = Gimp.Layer.new(im, name, 64, 48, Gimp.ImageType.RGBA_IMAGE, 100.0,
                         Gimp.LayerMode.NORMAL)
    im.insert_layer(new, parent, position)
    fx.fill(new, fx.style_pixels(64, 48, seed) if name != 'photo' else fx.content_pixels(64, 48))
    return new


def group(im, name, parent=None):
    new = Gimp.GroupLayer.new(im, name)
    im.insert_layer(new, parent, 0)
    return new


R = 'Neural Style (painting)'
placed('place: painting opened as a layer on top of the photo',
       lambda im: {'photo': layer(im, 'photo'), 'style': layer(im, 'painting')},
       [R, 'painting', 'photo'])
placed('place: painting below the photo', lambda im: {'style': layer(im, 'painting'),
                                                      'photo': layer(im, 'photo')},
       [R, 'photo', 'painting'])


def in_group(im):
    g = group(im, 'group')
    photo = layer(im, 'photo', g)
    paint = layer(im, 'painting', g)
    layer(im, 'sky')                         # above the group: not a source, stays on top
    return {'photo': photo, 'style': paint}


placed('place: photo and painting in a group', in_group,
       ['sky', ('group', [R, 'painting', 'photo'])])


def painting_outside(im):
    g = group(im, 'group')
    photo = layer(im, 'photo', g)
    return {'photo': photo, 'style': layer(im, 'painting')}


placed('place: painting outside the photo\'s group', painting_outside,
       ['painting', ('group', [R, 'photo'])])


def second_style(im):
    photo = layer(im, 'photo')
    second = layer(im, 'second painting', None, 0, 1)
    return {'photo': photo, 'style': style, 'style2': second}


placed('place: a blended second style above the photo', second_style,
       ['Neural Style (strokes)', 'second painting', 'photo'])


# a second run: its result goes above the first (it went directly above the painting, under
# the first result, and was out of sight); a layer the user put on top stays on top
def second_run(label, with_sky):
    im = Gimp.Image.new(64, 48, Gimp.ImageBaseType.RGB)
    photo = layer(im, 'photo')
    paint = layer(im, 'painting')
    im.set_selected_layers([photo])
    statuses = []
    for n in range(2):
        st, msg, dt = fx.run_plugin(im, photo, method='fast', style_layer=paint)
        statuses.append(st)
        if n == 0 and with_sky:
            layer(im, 'sky')
    fx.check('%s: both runs SUCCESS' % label, statuses == [S.SUCCESS] * 2, statuses)
    got = [item.get_name() for item in im.get_layers()]
    want = (['sky'] if with_sky else []) + [R + ' #1', R, 'painting', 'photo']
    fx.check('%s: the second result above the first' % label, got == want, got)
    im.delete()


second_run('place: a second run', False)
second_run('place: a second run, a layer on top of both', True)

# ---- 6. Fast and Quality work at the layer's own size by default -----------------------
fast_img = Gimp.Image.new(640, 480, Gimp.ImageBaseType.RGB)
fast_photo = fx.new_layer(fast_img, 'photo', 640, 480, fx.content_pixels(640, 480))
for method, extra in (('fast', {}), ('quality', {'preset': 'draft'})):
    results = {}
    for label, props in (('defaults', {}), ('size 0 (the layer\'s size)', {'size': 0})):
        st, msg, dt = fx.run_plugin(fast_img, fast_photo, style_layer=style, method=method,
                                    **extra, **props)
        fx.check('%s %s on a 640x480 layer: SUCCESS' % (method, label), st == S.SUCCESS, msg)
        if st == S.SUCCESS:
            results[label] = fx.pixels(fast_img.get_layers()[0])
            fast_img.remove_layer(fast_img.get_layers()[0])
    if len(results) == 2:
        a, b = results.values()
        worst = max(abs(x - y) for x, y in zip(a, b))
        fx.check('%s: the defaults work at the layer\'s own size (the same picture as size 0)'
                 % method, worst <= 2, 'max |diff| %d' % worst)
fast_img.delete()

# ---- 7. labels: GIMP's spelling, and a mnemonic on every option -------------------------
nicks = {spec.name: spec.get_nick() for spec in proc.get_arguments()}
# Alt+P is the dialog preview's own toggle ("_Preview", made by GIMP's GimpPreview)
fx.check('label: "Preserve color", as GIMP spells it, its mnemonic not Alt+P',
         nicks['preserve-colors'] == 'Preser_ve color', nicks['preserve-colors'])
plain = [n for n, nick in nicks.items() if n not in ('run-mode', 'image', 'drawables') and
         '_' not in nick]
fx.check('labels: every option has a mnemonic', not plain, plain)

# ---- 8. the time left: close to the time the run then takes ------------------------------
# A Quality run of two scales (200 and 400 px, Draft: 60 + 6 steps). A watcher process
# stamps each line of the plug-in's test log as it appears, as a user reads the status bar;
# each "N s left" is compared with the time from then until the PDB call returned. It said
# "step 1/100, 5 min left" for a 28 s run, and "3 s left" took 9 s.
WATCH = r'''
import os, sys, time
log, out = sys.argv[1:3]
seen = 0
with open(out, 'w') as stamps:
    while True:
        text = open(log).read() if os.path.exists(log) else ''
        lines = text[:text.rfind('\n') + 1].splitlines()     # whole lines only
        for line in lines[seen:]:
            stamps.write('%.3f %s\n' % (time.time(), line))
            stamps.flush()
        seen = max(seen, len(lines))
        time.sleep(0.02)
'''
eta_img = Gimp.Image.new(400, 300, Gimp.ImageBaseType.RGB)
eta_photo = fx.new_layer(eta_img, 'photo', 400, 300, fx.content_pixels(400, 300))
fx.reset_hook()
stamp_file = os.path.join(fx.OUT, 'eta-stamps.txt')
watcher = subprocess.Popen([sys.executable if os.path.exists(sys.executable) else
                            '/usr/bin/python3', '-c', WATCH,
                            os.path.join(fx.HOOK, 'plugin.log'), stamp_file])
st, msg, dt = fx.run_plugin(eta_img, eta_photo, style_layer=style, method='quality',
                            preset='draft', size=400)
t_end = time.time()
time.sleep(0.2)
watcher.terminate()
watcher.wait(5)
fx.check('time left: the Quality run succeeded', st == S.SUCCESS, msg)
shown = []
with open(stamp_file) as f:
    for row in f:
        t, line = row.rstrip('\n').split(' ', 1)
        m = re.search(r'step (\d+)/\d+, (\d+) (s|min) left$', line)
        if line.startswith('progress ') and m:
            eta = int(m.group(2)) * (60 if m.group(3) == 'min' else 1)
            shown.append((int(m.group(1)), eta, t_end - float(t)))
print('TIME quality run for the time left %.1f s; (step, shown, actual): %s' % (
    dt, [(k, e, round(a, 1)) for k, e, a in shown]), flush=True)
fx.check('time left: shown through the run', len(shown) >= 5, shown)
off = [(k, e, round(a, 1)) for k, e, a in shown if not a / 2 - 3 <= e <= 2 * a + 3]
fx.check('time left: every figure within half to twice the time the run then took '
         '(3 s either way)', shown and not off, off[:5])
if shown:
    k, e, a = shown[-1]
    fx.check('time left: the last figure (%d s) came true within 4 s' % e, a <= e + 4,
             'took %.1f s' % a)
eta_img.delete()

img.delete()
styles_img.delete()
fx.finish()
