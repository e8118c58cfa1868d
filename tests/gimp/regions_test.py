# Runs INSIDE GUI gimp under Xvfb (python-fu-eval), as gui_test.py:
#   GUI_SCRIPT=tests/gimp/regions_test.py BATCH=0 tests/gimp/run.sh
# Styles by region (issue 24) in real GIMP, with the installed plug-in, the real worker and
# Fast's real weights: a photo, two paintings of contrasting colours, a channel for the sky
# (Select > Save to Channel); style 1 in the channel, style 2 "Everywhere else", one OK: one
# layer, its sky in the first painting's colours and the rest in the second's, one Ctrl+Z;
# the dialog with its regions; Filters > Repeat with the channel, and without it once it is
# deleted; a deleted, missing or foreign channel and an "Everywhere else" of nothing refused
# before any work (no job folder, no layer). tests/test_gimp_regions.py runs this.
import os
import re
import sys
import time

sys.path.insert(0, os.environ['NS_TEST'])
import fixtures as fx  # noqa: E402
from gi.repository import Gimp  # noqa: E402

S = Gimp.PDBStatusType
DIALOG = '^Neural Style$'
MAIN = ' – GIMP$'
SHOWN = {'wait_log': '^dialog-shown ', 'timeout': 30, 'optional': True}
GUI_LOG = os.path.join(fx.OUT, 'gui.log')
W, H, OFFSET = 128, 96, (16, 12)          # the photo in a 160 x 120 image
SKY_ROWS = H // 2                         # the channel covers the photo's top half
BLUES = [(20, 40, 120), (40, 90, 190), (70, 130, 220), (15, 25, 70), (100, 160, 230)]
ORANGES = [(230, 120, 30), (200, 70, 20), (250, 170, 60), (150, 50, 20), (240, 200, 120)]


def mean_rgb(data, w, rows):
    """The mean colour of these rows of an RGBA picture w pixels wide."""
    sums, n = [0, 0, 0], 0
    for y in rows:
        row = data[y * w * 4:(y + 1) * w * 4]
        for c in range(3):
            sums[c] += sum(row[c::4])
        n += w
    return [s / n for s in sums]


def distance(a, b):
    return sum((x - y) ** 2 for x, y in zip(a, b)) ** 0.5


def preview_halves(png):
    """The mean colours of the top and the bottom half of the dialog's preview in a grab of
    the dialog: the picture in its top-left corner, found as the box of coloured pixels above
    the Preview toggle (each grab its own: the toggle's focus frame moves the picture)."""
    from gi.repository import GdkPixbuf
    pix = GdkPixbuf.Pixbuf.new_from_file(png)
    n, stride, data = pix.get_n_channels(), pix.get_rowstride(), pix.get_pixels()

    def px(x, y):
        return data[y * stride + x * n:y * stride + x * n + 3]

    coloured = [(x, y) for y in range(0, min(pix.get_height(), 115))
                for x in range(0, min(pix.get_width(), 220))
                if max(px(x, y)) - min(px(x, y)) > 30]
    if not coloured:
        return None, None
    x0, x1 = min(x for x, _ in coloured), max(x for x, _ in coloured)
    y0, y1 = min(y for _, y in coloured), max(y for _, y in coloured)
    mid, margin = (y0 + y1) // 2, max(2, (y1 - y0) // 12)   # away from the regions' edge
    print('preview box in %s: %d,%d - %d,%d' % (os.path.basename(png), x0, y0, x1, y1),
          flush=True)

    def mean(rows):
        sums, count = [0, 0, 0], 0
        for y in rows:
            for x in range(x0, x1 + 1):
                for c, v in enumerate(px(x, y)):
                    sums[c] += v
                count += 1
        return [v / max(count, 1) for v in sums]
    return mean(range(y0, mid - margin)), mean(range(mid + margin, y1 + 1))


def gui_log():
    with open(GUI_LOG, encoding='utf-8', errors='replace') as f:
        return f.read()


def field(line, name):
    m = re.search(r'(?:^| )%s=(.*?)(?= [a-z-]+=|$)' % re.escape(name), line or '')
    return m.group(1) if m else None


def names(image):
    return [layer.get_name() for layer in image.get_layers()]


def added(image, before):
    """The one layer the run added (it goes above the topmost of the photo and its style
    layers: not always on top), or None; before: the ids of the layers before the run."""
    new = [layer for layer in image.get_layers() if layer.get_id() not in before]
    return new[0] if len(new) == 1 else None


def ids(image):
    return {layer.get_id() for layer in image.get_layers()}


def no_work(label, image, before):
    """A refusal before any work: no job folder was made (so no worker), no layer added,
    the image as it was."""
    log = fx.hook_log()
    fx.check('%s: refused before any work (no job folder, no worker)' % label,
             not any(line.startswith(('job-dir ', 'worker-pid ')) for line in log), log[-6:])
    fx.check('%s: no layer added, the image as it was' % label,
             fx.snapshot(image) == before, names(image))


def refused(label, image, words, **props):
    """A non-interactive run that must be refused with words in its message."""
    before = fx.snapshot(image)
    fx.reset_hook()
    st, msg, dt = fx.run_plugin(image, photo, method='fast', **props)
    fx.check('%s: refused with a message saying %r' % (label, words),
             st == S.EXECUTION_ERROR and words in (msg or ''), '(%s) %s' % (st, msg))
    no_work(label, image, before)
    return msg


def judged(label, layer, top, bottom):
    """The result's sky (top) and rest (bottom), away from the edge between them: each
    closer to its painting's mean colour than to the other's. top/bottom: 'blue', 'orange'
    or 'photo' (the photo's own pixels: no style there)."""
    got = fx.pixels(layer)
    sky = range(0, SKY_ROWS - 8)
    ground = range(SKY_ROWS + 8, H)
    means = {'blue': mean_rgb(BLUE, 120, range(120)), 'orange': mean_rgb(ORANGE, 120,
                                                                          range(120))}
    for part, rows, want in (('sky', sky, top), ('rest', ground, bottom)):
        colour = mean_rgb(got, W, rows)
        if want == 'photo':
            diff = fx.mean_abs_diff(got[rows[0] * W * 4:(rows[-1] + 1) * W * 4],
                                    PHOTO[rows[0] * W * 4:(rows[-1] + 1) * W * 4])
            fx.check('%s: the %s is the photo as it was (no style there)' % (label, part),
                     diff < 2, 'mean |diff| %.2f' % diff)
            continue
        other = 'orange' if want == 'blue' else 'blue'
        near, far = distance(colour, means[want]), distance(colour, means[other])
        fx.check('%s: the %s is closer to the %s painting than to the %s one' % (
            label, part, want, other), near < far,
            'mean colour %s: %.1f from %s, %.1f from %s' % (
                [round(c) for c in colour], near, want, far, other))


# ---- the fixture: a photo, two paintings, the sky saved as a channel ------------------------
img = Gimp.Image.new(160, 120, Gimp.ImageBaseType.RGB)
img.undo_disable()                                   # building the fixture is not undoable
photo = fx.new_layer(img, 'photo', W, H, fx.content_pixels(W, H))
photo.set_offsets(*OFFSET)
BLUE = fx.style_pixels(120, 120, palette=BLUES)
ORANGE = fx.style_pixels(120, 120, palette=ORANGES)
blue = fx.new_layer(img, 'blue strokes', 120, 120, BLUE)
orange = fx.new_layer(img, 'orange strokes', 120, 120, ORANGE)
blue.set_visible(False)
orange.set_visible(False)
# Select > Save to Channel: the photo's top half, in image coordinates
img.select_rectangle(Gimp.ChannelOps.REPLACE, 0, 0, 160, OFFSET[1] + SKY_ROWS)
sky = Gimp.Selection.save(img)
sky.set_name('sky')
Gimp.Selection.none(img)
img.undo_enable()
img.set_selected_layers([photo])
PHOTO = fx.pixels(photo)
SOURCES = {layer: fx.pixels(layer) for layer in (photo, blue, orange)}
display = Gimp.Display.new(img)
Gimp.displays_flush()
fx.check('fixture: the channel "sky" is in the image', names(img) == [
    'orange strokes', 'blue strokes', 'photo'] and [c.get_name() for c in img.get_channels()]
    == ['sky'], [c.get_name() for c in img.get_channels()])
TWO = dict(style_layer=blue, style_region='channel', style_channel=sky,
           style_layer_2=orange, style_weight_2=1.0, style_region_2='rest')

# ---- 1. one OK: one layer, the sky in the first painting, the rest in the second -----------
layers_before = names(img)
known = ids(img)
fx.reset_hook()
st, msg, dt = fx.run_plugin(img, photo, method='fast', **TWO)
Gimp.displays_flush()
print('TIME regions, Fast, two styles %.1f s' % dt, flush=True)
fx.check('two regions: SUCCESS', st == S.SUCCESS, '(%s) %s' % (st, msg))
fx.check('two regions: the job carried the regions (the channel, everywhere else)',
         'regions channel rest' in fx.hook_log(), fx.hook_log()[-8:])
got = names(img)
fx.check('two regions: exactly one layer added, above the paintings',
         got == ['Neural Style (blue strokes)'] + layers_before, got)
new = added(img, known) or img.get_layers()[0]
fx.check('two regions: the photo\'s size and offsets',
         (new.get_width(), new.get_height(), tuple(new.get_offsets()[1:])) == (W, H, OFFSET),
         (new.get_width(), new.get_height(), new.get_offsets()))
judged('two regions', new, 'blue', 'orange')
fx.save_raw('regions', new)
fx.check('two regions: the photo and the paintings byte-identical',
         all(fx.pixels(layer) == data for layer, data in SOURCES.items()))
fx.check('two regions: job folder removed', fx.job_dirs() == [], fx.job_dirs())
r = fx.done(fx.ask({'find': MAIN}, {'key': 'ctrl+z'}))
fx.check('two regions: Ctrl+Z pressed', r['ok'], r)
deadline = time.time() + 5
while len(img.get_layers()) != len(layers_before) and time.time() < deadline:
    time.sleep(0.1)
time.sleep(0.5)                              # ...and whatever a second undo step would do
fx.check('two regions: ONE Ctrl+Z removed the whole result', names(img) == layers_before,
         names(img))
fx.check('two regions: the channel is still there after the undo',
         [c.get_name() for c in img.get_channels()] == ['sky'])

# ---- 2. the dialog: the regions beside their styles, the channel active only where used ----
fx.reset_hook()
known = ids(img)
n = fx.ask({'find': DIALOG}, SHOWN, {'sleep': 1}, {'grab': 'regions-dialog.png'},
           {'key': 'alt+o'})
st, msg, dt = fx.run_plugin(img, photo, run_mode=Gimp.RunMode.INTERACTIVE, method='fast',
                            style_layer=blue, style_region='channel', style_channel=sky)
r = fx.done(n)
line = next((row for row in fx.hook_log() if row.startswith('dialog-shown ')), None)
fx.check('dialog: style 1 in the channel "sky" (its chooser active), the other channels '
         'greyed out', field(line, 'regions') ==
         'channel/sky/True;everywhere/-/False;everywhere/-/False', line)
fx.check('dialog: OK active, no note about the regions',
         field(line, 'ok-sensitive') == 'True' and field(line, 'region-note') == '', line)
new = added(img, known)
fx.check('dialog: OK runs it, one layer added', r['ok'] and st == S.SUCCESS and new,
         '(%s) %s %s %s' % (st, msg, r, names(img)))
if new is not None:
    judged('dialog, the sky only', new, 'blue', 'photo')
    img.remove_layer(new)

# ---- 2b. the dialog's Preview (Fast) paints the regions: the sky changes, the rest not -----
# The warm worker, as a user's previews have it; two grabs of the dialog, the Preview off
# (the layer as it is) and on: the preview's top half is painted, its bottom half, where no
# style paints, stays the photo.
CONFIG = os.path.join(os.environ['NS_PLUGIN_DIR'], 'neural_style.json')
fx.set_config(CONFIG, keep_alive_seconds=600)
fx.reset_hook()
n = fx.ask({'find': DIALOG}, SHOWN, {'sleep': 1}, {'grab': 'regions-preview-off.png'},
           {'key': 'alt+p'}, {'wait_log': '^dialog preview 1 ', 'timeout': 180},
           {'sleep': 1}, {'grab': 'regions-preview.png'}, {'key': 'Escape'})
st, msg, dt = fx.run_plugin(img, photo, run_mode=Gimp.RunMode.INTERACTIVE, method='fast',
                            style_layer=blue, style_region='channel', style_channel=sky)
r = fx.done(n)
fx.set_config(CONFIG, keep_alive_seconds=0)
log = fx.hook_log()
fx.check('preview: drawn, with no failure', r['ok'] and any(
    line.startswith('dialog preview 1 ') for line in log) and not any(
    line.startswith(('dialog preview: ', 'dialog preview failed')) for line in log),
    (r, [line for line in log if line.startswith('dialog preview')][-4:]))
if r['ok']:
    (top0, bottom0), (top1, bottom1) = (
        preview_halves(os.path.join(fx.OUT, name))
        for name in ('regions-preview-off.png', 'regions-preview.png'))
    top, bottom = distance(top0, top1), distance(bottom0, bottom1)
    fx.check('preview: the sky painted, the rest the photo as it was',
             top > 40 and bottom < 12, 'mean colour moved: top %.1f, bottom %.1f' % (
                 top, bottom))
fx.check('preview: Escape leaves the image as it was',
         st == S.CANCEL and names(img) == layers_before, names(img))

# ---- 3. Filters > Repeat: the channel found again; deleted, refused naming it -------------
fx.reset_hook()
known = ids(img)
st, msg, dt = fx.run_plugin(img, photo, run_mode=Gimp.RunMode.WITH_LAST_VALS)
new = added(img, known)
fx.check('repeat: SUCCESS with the last run\'s channel, one layer added',
         st == S.SUCCESS and new and any(
             line.startswith('repeat with style layers') and "channels ['sky', None, None]"
             in line for line in fx.hook_log()), '(%s) %s %s' % (st, msg, fx.hook_log()[-6:]))
if new is not None:
    judged('repeat', new, 'blue', 'photo')
    img.remove_layer(new)
fx.check('repeat: the photo and the paintings byte-identical',
         all(fx.pixels(layer) == data for layer, data in SOURCES.items()))
img.remove_channel(sky)
before = fx.snapshot(img)
fx.reset_hook()
st, msg, dt = fx.run_plugin(img, photo, run_mode=Gimp.RunMode.WITH_LAST_VALS)
fx.check('repeat, the channel deleted: refused, naming it',
         st == S.EXECUTION_ERROR and '"sky"' in msg and 'not in this image any more' in msg,
         '(%s) %s' % (st, msg))
no_work('repeat, the channel deleted', img, before)

# ---- 4. a deleted channel named by a script: refused before any work ----------------------
before = fx.snapshot(img)
fx.reset_hook()
st, msg, dt = fx.run_plugin(img, photo, method='fast', **TWO)
print('deleted channel named: status %s, message %r' % (st, msg), flush=True)
fx.check('deleted channel named: refused (GIMP\'s own check or the plug-in\'s)',
         st in (S.EXECUTION_ERROR, S.CALLING_ERROR) and msg, '(%s) %s' % (st, msg))
if st == S.EXECUTION_ERROR:
    fx.check('deleted channel named: the plug-in\'s message says the channel is gone',
             'not in the image any more' in msg or 'no channel is chosen' in msg, msg)
no_work('deleted channel named', img, before)

# ---- 5. regions that cannot be painted: refused before any work, each with its reason ------
river = Gimp.Selection.save(img)            # the selection is empty: an all-black channel
river.set_name('river')
refused('in the channel, none chosen', img, 'no channel is chosen',
        style_layer=blue, style_region='channel')
refused('everywhere else, no other region', img, 'it would paint nowhere',
        style_layer=blue, style_region='rest')
refused('everywhere else, the other everywhere', img, 'style 1 paints everywhere',
        style_layer=blue, style_layer_2=orange, style_weight_2=1.0, style_region_2='rest')
refused('a channel that covers none of the photo', img, 'covers none of the layer "photo"',
        style_layer=blue, style_region='channel', style_channel=river,
        style_layer_2=orange, style_weight_2=1.0, style_region_2='rest')
other = Gimp.Image.new(160, 120, Gimp.ImageBaseType.RGB)
other.select_rectangle(Gimp.ChannelOps.REPLACE, 0, 0, 80, 60)
foreign = Gimp.Selection.save(other)
foreign.set_name('elsewhere')
Gimp.Selection.none(other)
refused('a channel of another image', img, 'belongs to the image',
        style_layer=blue, style_region='channel', style_channel=foreign)
other.delete()

# ---- 6. the dialog waits for a channel: OK greyed out, a note saying why ------------------
bare = Gimp.Image.new(W, H, Gimp.ImageBaseType.RGB)
bare_photo = fx.new_layer(bare, 'photo', W, H, fx.content_pixels(W, H))
bare_paint = fx.new_layer(bare, 'painting', 60, 60, fx.style_pixels(60, 60, palette=BLUES))
bare.set_selected_layers([bare_photo])
bare_display = Gimp.Display.new(bare)
Gimp.displays_flush()
fx.reset_hook()
n = fx.ask({'find': DIALOG}, SHOWN, {'sleep': 1}, {'grab': 'regions-no-channel.png'},
           {'key': 'alt+o'}, {'sleep': 1}, {'key': 'Escape'})
st, msg, dt = fx.run_plugin(bare, bare_photo, run_mode=Gimp.RunMode.INTERACTIVE,
                            method='fast', style_layer=bare_paint, style_region='channel')
r = fx.done(n)
line = next((row for row in fx.hook_log() if row.startswith('dialog-shown ')), None)
fx.check('dialog, no channel in the image: OK greyed out, the note says why',
         field(line, 'ok-sensitive') == 'False'
         and 'no channel is chosen' in (field(line, 'region-note') or ''), line)
fx.check('dialog, no channel: OK did nothing, Escape cancelled',
         r['ok'] and st == S.CANCEL and len(bare.get_layers()) == 2, '(%s) %s' % (st, msg))
bare_display.delete()
bare.delete()

# ---- 7. the labels: GIMP found no missing or shared mnemonic; it could keep the values -----
fx.check_dialog_log(gui_log())
display.delete()
img.delete()
fx.finish()
