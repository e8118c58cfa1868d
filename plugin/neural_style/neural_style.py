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
import gc
import json
import os
import signal
import sys
import threading
import time

import gi
gi.require_version('Gimp', '3.0')
gi.require_version('Gegl', '0.4')
from gi.repository import Gegl, Gimp, Gio, GLib, GObject  # noqa: E402

import nst_client  # noqa: E402  (beside this file)
import nst_protocol  # noqa: E402  (beside this file)
import style_choice  # noqa: E402  (beside this file)
from nst_client import Cancelled, Failure  # noqa: E402

PROC_NAME = 'python-fu-neural-style'
HELP_DOMAIN = 'neural-style-help'    # help/en/gimp-help.xml maps PROC_NAME to its page
HERE = os.path.dirname(os.path.abspath(__file__))
PIXEL_FORMAT = "R'G'B'A u8"          # the protocol's buffers: non-linear sRGB, straight alpha
CONFIG_NAME = 'neural_style.json'
CONFIG_ENV = 'NEURAL_STYLE_CONFIG'
PROGRESS_INTERVAL = 0.1              # at most this often a progress call into GIMP
PREVIEW_SECONDS = 2.0                # Quality's picture while it forms, at most this often
PREVIEW_SIDE = 512                   # the preview window's longest side
PREVIEW_QUALITY_STEPS = 30           # the dialog's preview of Quality: its first steps...
PREVIEW_QUALITY_SECONDS = 0.5        # ...drawn as they form, at most this often
METHOD_NAMES = {'quality': 'Quality', 'fast': 'Fast', 'trained': 'the trained model'}

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
# the letters of the dialog's buttons (Reset, Cancel, OK, Load/Save Settings: r c o l s), of
# Reset's two choices (Initial Values, Factory Defaults: i f) or of the preview's toggle (p).
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
    ('preserve-colors', 'choice', 'Preser_ve color',
     "Keep the content's colors: luminance transfers only brightness; histogram matches the "
     "style's colors to the content's first.",
     'none', [('none', 'No'), ('luminance', 'Luminance only'),
              ('histogram', 'Match histogram')], None),
    ('size', 'int', 'Output si_ze (px)',
     'Quality: the size of the longest side to paint at, in pixels (0 = the layer\'s own '
     'size, the sharpest; larger than the layer is not used); a smaller size is faster and '
     'is scaled to the layer. Fast always works at the layer\'s own size.', 0, 0, 16384),
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
DIALOG_ORDER = ['style-layer', 'method', 'trained-model', 'model-note', 'preset', 'size',
                'size-note', 'strength', 'style-scale', 'preserve-colors', 'fit', 'device',
                'seed', 'more-styles-expander']
QUALITY_ONLY = ('preset', 'size')
STYLE_ONLY = ('style-layer', 'more-styles-expander')      # greyed out for Trained model
MODEL_NOTE = 'Choose the trained model\'s file (.pth) to paint with it.'
# A network trained for one style (python -m nst_core train, or pytorch/examples' candy.pth
# ...): the file is the style, so the style layers are not used with it.
MODEL_ARG = 'trained-model'
MODEL_LABEL = 'Trained model (.pt_h)'
SLIDERS = ('strength', 'style-scale', 'style-weight-2', 'style-weight-3')


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


class TestHooks(nst_client.Hooks):
    """The hooks above, where the worker client calls them."""

    def log(self, message):
        _test_log(message)

    def kill(self, point):
        _test_kill(point)


HOOKS = TestHooks()


class DialogProbe:
    """What the dialog shows, into the test log (a 'dialog-shown' line a second after it
    appears, a 'dialog-state' line after every change): the GUI tests read it back. Does
    nothing unless the test environment is set."""

    def __init__(self, dialog, config, style, ok_button, notes, preview):
        self.on = bool(os.environ.get(TEST_DIR_ENV))
        self.dialog, self.config, self.style, self.ok = dialog, config, style, ok_button
        self.notes, self.preview = notes, preview

    def report(self, kind):
        if not self.on or self.preview.closed:
            return False
        from gi.repository import GObject as G
        dialog, config = self.dialog, self.config
        widget = {n: dialog.get_widget(n, G.TYPE_NONE) for n in
                  ('preset', 'size', 'strength', 'style-scale', 'style-layer',
                   'more-styles-expander')}
        scale = widget['style-scale'].get_range().get_adjustment()
        layer = config.get_property('style-layer')
        display = dialog.get_display()
        monitor = display.get_monitor_at_window(dialog.get_window()) \
            if dialog.get_window() is not None else display.get_monitor(0)
        _test_log(
            '%s style-layer=%s chooser-label=%s thumbnail=%s method=%s seed=%d size=%d fit=%s '
            'preset-sensitive=%s size-sensitive=%s strength-widget=%s style-scale-widget=%s '
            'style-scale-position=%.2f style-layer-sensitive=%s more-styles-sensitive=%s '
            'more-styles-expanded=%s ok-sensitive=%s model-note=%s preview=%s height=%d '
            'min-height=%d screen-height=%d preview-label=%s note=%s' % (
                kind, layer.get_name() if layer else None, self.style.label(),
                '%dx%d' % self.style.thumbnail if self.style.thumbnail else None,
                config.get_property('method'), config.get_property('seed'),
                config.get_property('size'), config.get_property('fit'),
                widget['preset'].is_sensitive(), widget['size'].is_sensitive(),
                type(widget['strength']).__name__, type(widget['style-scale']).__name__,
                (scale.get_value() - scale.get_lower()) / (scale.get_upper() - scale.get_lower()),
                widget['style-layer'].is_sensitive(),
                widget['more-styles-expander'].is_sensitive(),
                widget['more-styles-expander'].get_expanded(), self.ok.is_sensitive(),
                self.notes['model-note'].get_visible(), config.get_property('preview'),
                dialog.get_allocated_height(), dialog.get_preferred_height()[0],
                monitor.get_workarea().height if monitor is not None else 0,
                self.preview.label.get_text(), self.notes['size-note'].get_text()))
        return False


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
    for key, default in nst_protocol.TIME_LIMITS.items():    # why these: nst_protocol.py
        value = config.setdefault(key, default)
        if not nst_protocol.is_seconds(value):
            raise Failure('"%s" in the Neural Style configuration %s must be a number of '
                          'seconds (0 = no limit), not %r.\nCorrect it, or run "python3 '
                          'install.py" again.' % (key, path, value))
    config['_path'] = path
    return config


def _read_pixels(drawable, width=None, height=None, side=None):
    """(w, h, RGBA bytes) of the layer, scaled by GEGL to width x height, or to a longest
    side of at most `side`; at its own size by default."""
    w, h = drawable.get_width(), drawable.get_height()
    scale = 1.0
    if width:
        scale = width / w
    elif side and max(w, h) > side:
        scale = side / max(w, h)
    if scale != 1.0:
        w, h = width or max(1, int(w * scale)), height or max(1, int(h * scale))
    data = drawable.get_buffer().get(Gegl.Rectangle.new(0, 0, w, h), scale, PIXEL_FORMAT,
                                     Gegl.AbyssPolicy.CLAMP)
    return w, h, bytes(data)


def _own_process_group():
    """Lead a process group, so that GIMP's Cancel (kill(-pid, SIGKILL)) takes the worker too."""
    if hasattr(os, 'setpgid'):
        try:
            os.setpgid(0, 0)
        except OSError:        # already a session leader: GIMP then kills us alone
            pass


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
    for key in nst_protocol.WORKER_OPTIONS:
        if config.get(key):
            options[key] = config[key]
    return options


def _style_side(drawable, method):
    """The longest side to read a style layer at, as the protocol says the method reads it
    (a large painting read for Fast at its own size was half of a warm 1024 px run)."""
    return nst_protocol.style_side(method, drawable.get_width(), drawable.get_height())


def _write_job(folder, content, styles, options, content_size=(None, None)):
    """Write the buffers and job.json into the JobFolder; styles: [(drawable, weight)];
    content_size: the content scaled to this (the dialog's preview), else its own size."""
    content_buffer = folder.buffer('content.rgba', *_read_pixels(content, *content_size))
    _test_kill('reading')
    method = options['method']
    return folder.write_job(content_buffer,
                            [folder.buffer('style%d.rgba' % i,
                                           *_read_pixels(d, side=_style_side(d, method)),
                                           weight=wt)
                             for i, (d, wt) in enumerate(styles)], options)


class ProgressBar(nst_client.Handler):
    """Worker events -> GIMP's progress bar, throttled, with stage text and ETA; previews to
    the preview window, if any."""

    def __init__(self, cancel_after):
        self.last = 0.0
        self.count = 0
        self.cancel_after = cancel_after
        self.window = None
        Gimp.progress_init('Neural Style: starting the worker...')

    def preview(self, event):
        if self.window is not None:
            self.window.show(event)

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
            eta = nst_protocol.format_eta(event.get('eta'))
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
        text = ('Neural Style failed: the worker stopped unexpectedly (%s) without saying '
                'why.' % ('exit code %s' % code if code is not None else 'it closed the '
                          'connection'))
    tail = nst_client.tail(err_path)
    if tail:
        text += '\n\nLast lines of the worker\'s log:\n' + tail
    return text


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
    apply to the result as to the photo), directly above the topmost of the photo, of the
    style layers that share that group (a painting added with File > Open as Layers lands on
    top of the photo and would cover a result put right above the photo), and of the earlier
    results in that group (a new result put under them was invisible). Style layers of
    other images, or outside the photo's group, do not move it."""
    parent = content.get_parent()
    position = image.get_item_position(content)
    for layer in styles:
        if layer.get_image().get_id() != image.get_id():
            continue
        sibling = _top_level_in(parent, layer)
        if sibling is not None:
            position = min(position, image.get_item_position(sibling))
    siblings = parent.get_children() if parent is not None else image.get_layers()
    for layer in siblings[:position]:
        if style_choice.is_result(layer):
            position = min(position, image.get_item_position(layer))
    return parent, position


def _insert_result(image, content, name, data, place, style_names=()):
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
    style_choice.mark_result(layer, style_names)
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


def _restore_styles(config, image, content):
    """Filters > Repeat (and Ctrl+F) runs with the last values: GIMP restores all but the
    style layers, which it cannot keep; style_choice finds them, or says which is gone."""
    if config.get_property('method') == 'trained':
        return                                  # the model file is the style
    try:
        style_choice.restore(config, image, content)
    except style_choice.NotFound as e:
        if e.args[0] is None:
            raise Failure('Filters > Repeat "Neural Style" has no style layer to repeat with: '
                          'choose one in Filters > Artistic > Neural Style... first.') from None
        raise Failure('Filters > Repeat "Neural Style" cannot run: the style layer of the last '
                      'run, %s, is not open any more. Open that painting again (File > Open '
                      'as Layers, or as an image), or choose another style in Filters > '
                      'Artistic > Neural Style...' % e.args[0]) from None
    _test_log('repeat with style layers %s' % [
        (layer.get_name() if layer is not None else None)
        for layer in (config.get_property(slot) for slot in style_choice.SLOTS)])


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
                      'trained for one style. In the Neural Style dialog, pick its file '
                      '(.pth) as "Trained model", or choose the Quality or Fast method.')
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


def _stylize(image, content, config, interactive=False):
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
    style_names = [layer.get_name() for layer, _ in styles]
    w, h = content.get_width(), content.get_height()
    if args['size']:
        args['size'] = min(args['size'], max(w, h))   # no work above the layer's own size
    _own_process_group()
    # the picture while it forms: Quality only (Fast is done in seconds), never in batch runs
    watch = interactive and args['method'] == 'quality'
    options = _options(settings, args)
    if watch:
        options['preview_seconds'] = PREVIEW_SECONDS
    bar = ProgressBar(_test_cancel_after())
    clock = Stopwatch()
    with nst_client.JobFolder(settings, HOOKS) as folder:
        job_path = _write_job(folder, content, styles, options)
        clock.lap('write-job')
        bar.window = PreviewWindow(folder, name) if watch else None
        try:
            _run_worker(settings, job_path, bar, presence, args['method'])
        finally:
            if bar.window is not None:
                bar.window.close()
        clock.lap('worker')
        data = folder.read('result.rgba', w, h)
    clock.lap('read-result')
    presence.check(force=True)
    bar.text('inserting the layer')
    style_layers = [layer for layer, _ in styles]
    place = _result_place(image, content, style_layers)
    layer = _insert_result(image, content, name, data, place, style_names)
    Gimp.progress_end()
    Gimp.displays_flush()
    clock.lap('insert')
    _test_log('inserted layer %d at %d' % (layer.get_id(), image.get_item_position(layer)))
    return layer


def _run_worker(settings, job_path, bar, presence, method):
    """Run the job on the warm worker or a one-shot one (nst_client); GIMP's events and the
    image's presence are looked after while it runs."""
    context = GLib.MainContext.default()

    def poll():
        for _ in range(50):            # the preview window draws; bounded, events pour in
            if not context.iteration(False):
                break
        presence.check()

    try:
        return nst_client.run_job(settings, job_path, bar, poll, HOOKS)
    except nst_client.WorkerFailed as e:
        raise Failure(_failure_message(e.code, e.error, e.log_path, settings, method)) \
            from None


class Stopwatch:
    """Phase times for the test log (bench/bench_plugin_overhead.py reads them)."""

    def __init__(self):
        self.last = time.monotonic()

    def lap(self, phase):
        now = time.monotonic()
        _test_log('timing %s %.3f' % (phase, now - self.last))
        self.last = now


# ---------------------------------------------------------------- previews

def _gtk():
    gi.require_version('GimpUi', '3.0')
    gi.require_version('Gtk', '3.0')
    gi.require_version('GdkPixbuf', '2.0')
    from gi.repository import GdkPixbuf, GimpUi, Gtk
    return GdkPixbuf, GimpUi, Gtk


def _digest(data):
    """A cheap fingerprint of a picture for the test log: did the preview change?"""
    return sum(data[::4093]) & 0xffffff


class PreviewWindow:
    """Quality's picture while it forms (interactive runs), in a window of its own drawn from
    the worker's preview events. Not a temporary layer: GIMP's Cancel kills the plug-in at any
    moment, and a layer drawn with undo frozen would stay behind in the image; the window goes
    with the plug-in, and the image and its undo history only ever see the result."""

    def __init__(self, folder, title):
        GdkPixbuf, GimpUi, Gtk = _gtk()
        self.GdkPixbuf, self.folder, self.count = GdkPixbuf, folder, 0
        self.window = Gtk.Window(title='%s: preview' % title)
        self.window.set_default_size(PREVIEW_SIDE, PREVIEW_SIDE * 3 // 4)
        box = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=6, border_width=6)
        self.picture, self.stage = Gtk.Image(), Gtk.Label(xalign=0.0)
        self.stage.get_style_context().add_class('dim-label')
        box.pack_start(self.picture, True, True, 0)
        box.pack_start(self.stage, False, False, 0)
        self.window.add(box)
        GimpUi.window_set_transient(self.window)

    def show(self, event):
        try:
            w, h = int(event['width']), int(event['height'])
            data = self.folder.read(event.get('path', 'preview.rgba'), w, h)
        except (Failure, KeyError, TypeError, ValueError):
            return          # replaced by a newer one of another size meanwhile: skip it
        pixbuf = self.GdkPixbuf.Pixbuf.new_from_bytes(
            GLib.Bytes.new(data), self.GdkPixbuf.Colorspace.RGB, True, 8, w, h, w * 4)
        k = PREVIEW_SIDE / max(w, h)      # the coarse scales' pictures are smaller: same size
        if k != 1:
            pixbuf = pixbuf.scale_simple(max(1, round(w * k)), max(1, round(h * k)),
                                         self.GdkPixbuf.InterpType.BILINEAR)
        self.picture.set_from_pixbuf(pixbuf)
        self.stage.set_text(str(event.get('stage') or ''))
        if not self.count:
            self.window.show_all()
        self.count += 1
        _test_log('preview %d %dx%d %06x' % (self.count, w, h, _digest(data)))

    def close(self):
        self.window.destroy()
        _test_log('preview window closed after %d pictures' % self.count)


class DialogPreview:
    """The dialog's Preview (GIMP's GimpAspectPreview: the whole layer, scaled, with its own
    "Preview" toggle), painted by the chosen method at the preview's size on the warm worker,
    again whenever an option changes, and a line under it saying what it shows. For Quality
    that is its first steps (PREVIEW_QUALITY_STEPS, drawn as they form): the whole run takes
    minutes; it used to show Fast's picture, whose cross-hatch misled the choice between the
    two. It renders in a thread of its own so that the dialog stays responsive; a change
    while it renders drops that render and starts another."""

    def __init__(self, preview, label, config, image, content):
        self.preview, self.label = preview, label
        self.config, self.image, self.content = config, image, content
        self.busy, self.again, self.closed, self.channel = False, False, False, None
        self.count = 0
        preview.connect('invalidated', lambda *_: self.request())
        # GIMP's aspect preview fills itself black when its toggle is off: the layer as it is
        preview.connect('notify::update', lambda *_: GLib.idle_add(self.original))
        preview.connect('notify::update', lambda *_: GLib.idle_add(self.describe))
        preview.get_area().connect_after('size-allocate',
                                         lambda *_: GLib.idle_add(self.original))

    def describe(self, step=None):
        """The line under the preview: what it shows (and, while it paints, how far)."""
        if self.closed:
            return False
        method = self.config.get_property('method')
        if not self.preview.get_update():
            text = 'Tick Preview to see %s on the layer.' % METHOD_NAMES[method]
        elif method == 'quality':
            text = ('Quality\'s first %d steps, at the preview\'s size: the run goes on to '
                    'finer detail.' % PREVIEW_QUALITY_STEPS)
        else:
            text = '%s, at the preview\'s size.' % METHOD_NAMES[method]
        if step is not None:
            text += ' Painting... %s' % step
        self.label.set_text(text)
        return False

    def original(self):
        if self.closed or self.preview.get_update() or not self.content.is_valid():
            return False
        w, h = self.preview.get_size()
        if w > 0 and h > 0:
            data = _read_pixels(self.content, w, h)[2]
            self.preview.get_area().draw(0, 0, w, h, Gimp.ImageType.RGBA_IMAGE, data, w * 4)
        return False

    def request(self):
        if self.closed or not self.preview.get_update():
            return
        if self.busy:
            self.again = True                 # the render in progress stops at its next poll
            return
        try:
            job = self._write()
        except Failure as e:
            _test_log('dialog preview: %s' % e)
            return
        if job is not None:
            self.busy = True
            threading.Thread(target=self._work, args=job, daemon=True).start()

    def _write(self):
        """The job at the preview's size, written here: GIMP's calls belong to this thread."""
        settings = _config()
        args, styles = _arguments(self.config)
        if not styles and not (args['method'] == 'trained' and args['trained_model']):
            return None
        w, h = self.preview.get_size()
        args['size'] = 0                      # the content is read at the preview's size
        options = _options(settings, args)
        if args['method'] == 'quality':
            options.update(preset='draft', iterations=PREVIEW_QUALITY_STEPS,
                           preview_seconds=PREVIEW_QUALITY_SECONDS, preview_side=max(w, h))
        folder = nst_client.JobFolder(settings).__enter__()
        job_path = _write_job(folder, self.content, styles, options, (w, h))
        return settings, folder, job_path, w, h, args['method']

    def _work(self, settings, folder, job_path, w, h, method):
        preview = self

        class Events(nst_client.Handler):
            def progress(self, event):
                if isinstance(event.get('step'), int) and isinstance(event.get('total'), int):
                    GLib.idle_add(preview.describe, 'step %d/%d' % (event['step'],
                                                                    event['total']))
                return False

            def preview(self, event):         # Quality's picture so far, as it forms
                try:
                    pw, ph = int(event['width']), int(event['height'])
                    data = folder.read(event.get('path', 'preview.rgba'), pw, ph)
                except (Failure, KeyError, TypeError, ValueError):
                    return
                GLib.idle_add(preview._draw, data, pw, ph, w, h)

        def poll():
            if self.closed or self.again:
                raise Cancelled()
        result = None
        try:
            self.channel = nst_client.open_channel(settings, job_path, poll)
            nst_client.follow(self.channel, settings, Events(), poll=poll)
            result = folder.read('result.rgba', w, h)
        except Exception as e:        # noqa: BLE001 - a preview must never end the dialog
            result = e
        finally:
            self.channel = None
            folder.__exit__(None, None, None)
        GLib.idle_add(self._done, result, w, h, method)

    def _draw(self, data, pw, ph, w, h):
        """Draw a picture of pw x ph scaled to the preview's w x h (Quality's pictures while
        they form are of the working size, which may differ by a pixel)."""
        if self.closed or self.again or (w, h) != tuple(self.preview.get_size()):
            return False
        if (pw, ph) != (w, h):
            GdkPixbuf = _gtk()[0]
            pixbuf = GdkPixbuf.Pixbuf.new_from_bytes(
                GLib.Bytes.new(data), GdkPixbuf.Colorspace.RGB, True, 8, pw, ph, pw * 4)
            pixbuf = pixbuf.scale_simple(w, h, GdkPixbuf.InterpType.BILINEAR)
            data = pixbuf.get_pixels()
            if pixbuf.get_rowstride() != w * 4:
                data = b''.join(data[y * pixbuf.get_rowstride():][:w * 4] for y in range(h))
        self.preview.get_area().draw(0, 0, w, h, Gimp.ImageType.RGBA_IMAGE, bytes(data), w * 4)
        return False

    def _done(self, result, w, h, method):
        self.busy = False
        if self.closed:
            return False
        if isinstance(result, bytes) and not self.again:
            self._draw(result, w, h, w, h)
            self.count += 1
            _test_log('dialog preview %d %dx%d %s %06x' % (self.count, w, h, method,
                                                           _digest(result)))
        elif not isinstance(result, (bytes, Cancelled)):
            _test_log('dialog preview failed: %r' % (result,))
        self.describe()
        _test_log('dialog preview says %s' % self.label.get_text())
        if self.again:
            self.again = False
            self.request()
        return False

    def close(self):
        """The dialog is closing: drop a render in progress (the warm worker is then free for
        the run) and let go of the widget, so that GIMP's preview is finalized (it stores its
        toggle through the PDB then) while the plug-in still runs."""
        self.closed = True
        channel = self.channel
        if channel is not None:
            channel.stop(0)
        for handler in getattr(self, 'handlers', []):
            self.config.disconnect(handler)
        self.handlers, self.preview, self.label = [], None, None
        gc.collect()


# ---------------------------------------------------------------- the dialog

def _settings_text(config):
    """The options in GIMP's config syntax, as gimp_config_serialize_to_string writes them:
    one "(name value)" line each; booleans yes/no, strings quoted. (Layers are left out, as
    GIMP 3.0 leaves them out: it cannot serialize them.)"""
    lines = []
    # the Preview toggle too: GIMP keeps it only after a successful run (a cancelled one
    # forgot it)
    for name in [option[0] for option in OPTIONS] + [w for _, w in STYLE_SLOTS[1:]] \
            + ['preview']:
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
    does not show the interface to PyGObject); the style layers, which GIMP cannot keep,
    beside them (style_choice)."""
    name = GObject.type_name(config.__gtype__)       # as G_OBJECT_TYPE_NAME in GIMP's code
    text = _settings_text(config)
    try:
        style_choice.remember(config, image)
    except Exception as e:      # noqa: BLE001 - a convenience: never worth failing the run
        _test_log('could not keep the style layers: %s' % e)
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


# what the dialog's preview shows depends on these (not on Quality's preset, size, seed)
PREVIEW_OPTIONS = ('style-layer', 'style-layer-2', 'style-weight-2', 'style-layer-3',
                   'style-weight-3', 'method', MODEL_ARG, 'strength', 'style-scale',
                   'preserve-colors', 'device')
# The dialog beside the buttons, its title bar and a panel: what is left of the screen's
# height for the options, which scroll beyond it (a 768 px screen showed no OK button).
DIALOG_CHROME = 240


def _preview(config, image, content):
    """GIMP's preview of the whole layer, its toggle bound to the "preview" argument
    (remembered as GIMP's filters remember theirs), drawn by DialogPreview, with a line
    under it saying what it shows."""
    _, GimpUi, Gtk = _gtk()
    widget = GimpUi.AspectPreview.new_from_drawable(content)
    config.bind_property('preview', widget, 'update',
                         GObject.BindingFlags.BIDIRECTIONAL | GObject.BindingFlags.SYNC_CREATE)
    label = Gtk.Label(xalign=0.0, yalign=0.0)
    label.set_line_wrap(True)
    label.set_max_width_chars(28)
    label.get_style_context().add_class('dim-label')
    renderer = DialogPreview(widget, label, config, image, content)
    renderer.handlers = [config.connect('notify::' + name, lambda *_: widget.invalidate())
                         for name in PREVIEW_OPTIONS]
    renderer.handlers.append(config.connect('notify::method',
                                            lambda *_: GLib.idle_add(renderer.describe)))
    renderer.describe()
    return renderer


def _screen_height(Gdk):
    """The height of the screen's work area (without panels), 768 when it cannot be known."""
    display = Gdk.Display.get_default()
    monitor = display.get_primary_monitor() or display.get_monitor(0) if display else None
    return monitor.get_workarea().height if monitor is not None else 768


def _layout(dialog, preview, label, Gtk, Gdk):
    """The preview beside the options, as GIMP's plug-ins with a preview have it (Lighting
    Effects, Curve Bend), not above them: the options in a scrolled window no taller than the
    screen allows, so the dialog fits a small screen and can be made smaller."""
    scrolled = dialog.get_widget('options-scroll', GObject.TYPE_NONE)
    scrolled.set_policy(Gtk.PolicyType.NEVER, Gtk.PolicyType.AUTOMATIC)
    scrolled.set_propagate_natural_width(True)
    scrolled.set_propagate_natural_height(True)
    scrolled.set_max_content_height(max(200, _screen_height(Gdk) - DIALOG_CHROME))
    parent = scrolled.get_parent()
    position = parent.get_children().index(scrolled)
    parent.remove(scrolled)
    column = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=6, valign=Gtk.Align.START)
    column.pack_start(preview, False, False, 0)
    column.pack_start(label, False, False, 0)
    row = Gtk.Box(orientation=Gtk.Orientation.HORIZONTAL, spacing=12)
    row.pack_start(column, False, False, 0)
    row.pack_start(scrolled, True, True, 0)
    parent.pack_start(row, True, True, 0)
    parent.reorder_child(row, position)
    for widget in (preview, label, column, row):
        widget.show()


def _choice_values(*names):
    return Gimp.ValueArray.new_from_values([GObject.Value(GObject.TYPE_STRING, n)
                                           for n in names])


def _dialog(procedure, config, image, content):
    gi.require_version('GimpUi', '3.0')
    gi.require_version('Gtk', '3.0')
    gi.require_version('Gdk', '3.0')
    from gi.repository import Gdk, GimpUi, Gtk, Pango
    # GIMP's previews name their stored state after the program: it must be a canonical
    # identifier (dashes, no underscores), or GIMP refuses it with an error message
    GLib.set_prgname('neural-style')
    GimpUi.init('neural-style')
    dialog = GimpUi.ProcedureDialog.new(procedure, config, 'Neural Style')
    for name in SLIDERS:                      # sliders, as GIMP's own filters have
        scale = dialog.get_scale_entry(name, 1.0)
        if name == 'style-scale':
            # 0.1..8 on a linear slider put the default 1 at the far left, where it read as
            # the minimum; logarithmic, 1 sits in the middle and halving or doubling the
            # strokes moves it as far either way
            scale.set_logarithmic(True)
    for name, kind, *_ in OPTIONS:
        if kind == 'choice':
            # combo boxes in both versions: GIMP 3.2 makes a radio frame of a choice of up to
            # three, whose title has no mnemonic (and it prints a warning for each)
            dialog.get_widget(name, Gtk.ComboBox.__gtype__)
    notes = {}
    for name, text in (('size-note', _size_note(config, content)),
                       ('model-note', MODEL_NOTE)):
        note = notes[name] = dialog.get_label(name, text, False, False)
        note.set_xalign(0.0)
        note.set_line_wrap(True)
        note.set_max_width_chars(50)
        note.get_style_context().add_class('dim-label')
    more = [name for slot in STYLE_SLOTS[1:] for name in slot]
    dialog.fill_box('more-styles', more)
    dialog.get_label('more-styles-title', '_Blend in more styles', False, True)
    # folded, as GIMP's filters fold their Blending Options: most runs use one style
    dialog.fill_expander('more-styles-expander', 'more-styles-title', False, 'more-styles')
    dialog.fill_box('options', DIALOG_ORDER)
    dialog.fill_scrolled_window('options-scroll', 'options')
    dialog.fill(['options-scroll'])
    for name in QUALITY_ONLY:                 # greyed out while Fast is chosen
        dialog.set_sensitive_if_in(name, None, 'method', _choice_values('quality'), True)
    dialog.set_sensitive_if_in(MODEL_ARG, None, 'method', _choice_values('trained'), True)
    # a trained network is its own style (the expander is no argument: GIMP 3.0 binds only
    # arguments' widgets, so changed() greys it out)
    dialog.set_sensitive_if_in(STYLE_ONLY[0], None, 'method', _choice_values('trained'), False)

    preview = _preview(config, image, content)
    _layout(dialog, preview.preview, preview.label, Gtk, Gdk)
    style = StyleChooser(dialog.get_widget('style-layer', GObject.TYPE_NONE), Gtk, Pango,
                         'Choose a layer...')
    for name in ('style-layer-2', 'style-layer-3'):
        StyleChooser(dialog.get_widget(name, GObject.TYPE_NONE), Gtk, Pango, 'None (optional)')
    ok_button = dialog.get_widget_for_response(Gtk.ResponseType.OK)
    probe = DialogProbe(dialog, config, style, ok_button, notes, preview)

    def changed(*_):
        if config.get_property('style-layer') is None:
            # Reset to Factory Defaults empties it (its default is none): offer the guess
            # again, as on the first opening (never a layer this filter made); with none to
            # offer it stays empty (setting None again would notify, and call this again)
            guess = style_choice.guess(image, content)
            if guess is not None:
                config.set_property('style-layer', guess)
        trained = config.get_property('method') == 'trained'
        model = config.get_property(MODEL_ARG)
        # OK waits for what the method paints with: the painting, or the trained model's
        # file (OK closed the dialog only to show an error)
        ready = (model is not None and bool(model.get_path())) if trained \
            else config.get_property('style-layer') is not None
        ok_button.set_sensitive(ready)
        dialog.get_widget(STYLE_ONLY[1], GObject.TYPE_NONE).set_sensitive(not trained)
        notes['model-note'].set_visible(trained and not ready)
        notes['size-note'].set_text(_size_note(config, content))
        probe.report('dialog-state')
        return False

    for name in ('style-layer', 'method', 'size', MODEL_ARG):
        config.connect('notify::' + name, lambda *_: GLib.idle_add(changed))
    # tall enough for the note a Trained model without a file adds (which else scrolled the
    # last options out of sight), yet free to be made smaller
    notes['model-note'].show()
    dialog.set_default_size(-1, min(dialog.get_preferred_height()[1], _screen_height(Gdk)))
    changed()
    dialog.connect('map-event', lambda *_: GLib.timeout_add(
        1000, lambda: probe.report('dialog-shown')) and False)

    ok = dialog.run()
    dialog.destroy()
    preview.close()
    layer = config.get_property('style-layer')
    _test_log('dialog ok=%s style-layer=%s method=%s seed=%d' % (
        ok, layer.get_name() if layer else None, config.get_property('method'),
        config.get_property('seed')))
    return ok


def run(procedure, run_mode, image, drawables, config, data):
    try:
        return _run(procedure, run_mode, image, drawables, config)
    finally:
        # GIMP saves the config as the last values after a successful interactive run, and
        # cannot write a layer: it printed "couldn't serialize property ...::style-layer of
        # type GimpLayer" twice per run. style_choice keeps them instead.
        for slot in style_choice.SLOTS:
            config.set_property(slot, None)


def _run(procedure, run_mode, image, drawables, config):
    interactive = run_mode == Gimp.RunMode.INTERACTIVE
    if interactive and len(drawables) == 1:
        style_choice.offer(config, image, drawables[0])
        if not _dialog(procedure, config, image, drawables[0]):
            return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, None)
        _remember(config, image)
    try:
        if run_mode == Gimp.RunMode.WITH_LAST_VALS and drawables:
            _restore_styles(config, image, drawables[0])
        _check_input(drawables, config)
        _stylize(image, drawables[0], config, interactive)
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
    procedure.add_boolean_aux_argument('preview', '_Preview',
                                       'Show the chosen method on the layer in the dialog '
                                       '(for Quality: its first steps)',
                                       False, rw)
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
        # the dialog's Help button and F1 open help/en/index.html, shipped beside this file
        # (without a help domain of its own GIMP looked for this filter in its user manual,
        # which has no page for it, and said the manual is not installed)
        self.set_help_domain(HELP_DOMAIN, Gio.File.new_for_path(os.path.join(HERE, 'help')))
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
