# Shared by batch_test.py and gui_test.py, which run INSIDE GIMP (python-fu-eval): images,
# pixels, checks and calling the plug-in through the PDB. Plain Python, no numpy.
import json
import os
import time

from gi.repository import Gegl, Gimp

FMT = "R'G'B'A u8"
PROC = 'python-fu-neural-style'
TEST = os.environ.get('NS_TEST', '/tmp')
OUT = os.environ.get('NS_OUT', '/tmp')
HOOK = os.environ.get('NEURAL_STYLE_TEST_DIR', '/tmp')
results = []


def check(name, ok, detail=''):
    results.append((name, bool(ok)))
    print('%s: %s %s' % ('PASS' if ok else 'FAIL', name, detail), flush=True)
    return ok


def finish():
    npass = sum(1 for _, ok in results if ok)
    nfail = len(results) - npass
    print('%d passed, %d failed' % (npass, nfail), flush=True)
    if nfail:
        raise RuntimeError('%d check(s) failed' % nfail)   # -> gimp exits 64


def pixels(drawable, fmt=FMT):
    w, h = drawable.get_width(), drawable.get_height()
    return bytes(drawable.get_buffer().get(Gegl.Rectangle.new(0, 0, w, h), 1.0, fmt,
                                           Gegl.AbyssPolicy.CLAMP))


def fill(layer, data):
    w, h = layer.get_width(), layer.get_height()
    buf = layer.get_buffer()
    buf.set(Gegl.Rectangle.new(0, 0, w, h), FMT, data)
    buf.flush()
    layer.update(0, 0, w, h)


def content_pixels(w, h):
    """A picture with structure: sky-to-ground gradient, a dark disc, a bright house, stripes,
    and a transparent ramp on the left (the result must keep this alpha)."""
    out = bytearray(w * h * 4)
    for y in range(h):
        for x in range(w):
            r, g, b = 90 + 100 * y // h, 140 + 60 * y // h, 220 - 120 * y // h
            if (x - w * 0.3) ** 2 + (y - h * 0.4) ** 2 < (h * 0.22) ** 2:
                r, g, b = 40, 30, 60
            elif w * 0.55 < x < w * 0.85 and h * 0.45 < y < h * 0.9:
                r, g, b = 240, 220, 180
                if (x // 6) % 3 == 0:
                    r, g, b = 120, 60, 40
            a = min(255, 40 + x * 30) if x < 8 else 255
            out[(y * w + x) * 4:(y * w + x) * 4 + 4] = bytes((r, g, b, a))
    return bytes(out)


def style_pixels(w, h, seed=0, palette=None):
    """A 'painting': swirling strokes in a few flat colours (seed picks the palette, unless
    one is given)."""
    import math
    palette = palette or [((20, 40, 110), (40, 90, 170), (230, 200, 60), (250, 240, 180),
                           (30, 30, 50), (90, 140, 200)),
                          ((150, 30, 20), (230, 120, 30), (250, 200, 80), (60, 20, 40),
                           (200, 80, 60), (240, 230, 200))][seed % 2]
    out = bytearray(w * h * 4)
    for y in range(h):
        for x in range(w):
            u = math.sin(x * 0.09 + 2 * math.sin(y * 0.05)) + \
                math.sin(y * 0.11 + 1.5 * math.sin(x * 0.07))
            v = math.sin((x + y) * 0.35 + 3 * math.sin(x * 0.04))
            colour = palette[int((u * 1.2 + v * 0.5 + 3) / 6 * len(palette)) % len(palette)]
            out[(y * w + x) * 4:(y * w + x) * 4 + 4] = bytes(colour) + b'\xff'
    return bytes(out)


def new_layer(img, name, w, h, data, gray=False):
    kind = Gimp.ImageType.GRAYA_IMAGE if gray else Gimp.ImageType.RGBA_IMAGE
    layer = Gimp.Layer.new(img, name, w, h, kind, 100.0, Gimp.LayerMode.NORMAL)
    img.insert_layer(layer, None, 0)
    fill(layer, data)
    return layer


def luminance(data):
    return [0.299 * data[i] + 0.587 * data[i + 1] + 0.114 * data[i + 2]
            for i in range(0, len(data), 4)]


def gradient(lum, w, h):
    return [abs(lum[y * w + x + 1] - lum[y * w + x]) + abs(lum[(y + 1) * w + x] - lum[y * w + x])
            for y in range(h - 1) for x in range(w - 1)]


def block_means(lum, w, h, block=8):
    """Luminance averaged over block x block tiles: the picture's large shapes only."""
    out = []
    for by in range(0, h - block + 1, block):
        for bx in range(0, w - block + 1, block):
            out.append(sum(lum[y * w + x] for y in range(by, by + block)
                           for x in range(bx, bx + block)) / block ** 2)
    return out


def mirrored(data, w, h):
    rows = [data[y * w * 4:(y + 1) * w * 4] for y in range(h)]
    return b''.join(b''.join(r[x * 4:x * 4 + 4] for x in range(w - 1, -1, -1)) for r in rows)


def edge_means(lum, w, h, block=8):
    """Gradient magnitude averaged over block x block tiles: where the picture's edges are."""
    return block_means(gradient(lum, w, h), w - 1, h - 1, block)


def structure(result, content, w, h):
    """How much of the content's layout the result keeps, against a control (the content
    mirrored left-right: what an unrelated picture scores). Two measures, each (same,
    control): the correlation of the large shapes' luminance (8 px tiles), and of where the
    edges are (8 px tiles of the gradient): a painting may keep the photo's tones, or
    recolour them (a dark disc painted bright) and keep its outlines."""
    mirror = mirrored(content, w, h)
    lum_r, lum_c, lum_m = luminance(result), luminance(content), luminance(mirror)
    tones = (correlation(block_means(lum_r, w, h), block_means(lum_c, w, h)),
             correlation(block_means(lum_r, w, h), block_means(lum_m, w, h)))
    edges = (correlation(edge_means(lum_r, w, h), edge_means(lum_c, w, h)),
             correlation(edge_means(lum_r, w, h), edge_means(lum_m, w, h)))
    return tones, edges


def keeps_structure(result, content, w, h, margin=0.25):
    """(ok, text): the tones or the edges follow the content, clearly more than the
    control's."""
    tones, edges = structure(result, content, w, h)
    ok = any(same > margin and same > control + margin for same, control in (tones, edges))
    return ok, ('correlation with the photo (mirrored photo): tones %.2f (%.2f), edges %.2f '
                '(%.2f)' % (tones + edges))


def save_raw(name, layer):
    """Keep a result for people to look at (run.sh copies NS_OUT/*.rgba out of the chroot)."""
    with open(os.path.join(OUT, '%s-%dx%d.rgba' % (name, layer.get_width(),
                                                     layer.get_height())), 'wb') as f:
        f.write(pixels(layer))


def correlation(a, b):
    n = len(a)
    ma, mb = sum(a) / n, sum(b) / n
    cov = sum((x - ma) * (y - mb) for x, y in zip(a, b))
    va = sum((x - ma) ** 2 for x in a) ** 0.5
    vb = sum((y - mb) ** 2 for y in b) ** 0.5
    return cov / (va * vb) if va and vb else 0.0


def mean_abs_diff(a, b):
    """Mean |difference| of the RGB channels."""
    total = sum(abs(a[i + c] - b[i + c]) for i in range(0, len(a), 4) for c in range(3))
    return total / (len(a) // 4 * 3)


def snapshot(image, fmt='RGBA float'):
    """Everything a failed run must not change: layers, their order, geometry and pixels."""
    out = []
    for layer in image.get_layers():
        items = [layer] + (list(layer.get_children()) if layer.is_group() else [])
        for item in items:
            out.append((item.get_name(), item.get_width(), item.get_height(),
                        tuple(item.get_offsets()[1:]), item.get_visible(),
                        pixels(item, fmt)))
    return out


def set_config(path, **keys):
    """Set keys of the plug-in's neural_style.json (the plug-in reads it at every run)."""
    with open(path) as f:
        cfg = json.load(f)
    cfg.update(keys)
    with open(path + '.part', 'w') as f:
        json.dump(cfg, f)
    os.replace(path + '.part', path)


def run_plugin(image, drawable, run_mode=Gimp.RunMode.NONINTERACTIVE, **props):
    """Call the plug-in through the PDB: (status, error message, seconds)."""
    pdb = Gimp.get_pdb()
    proc = pdb.lookup_procedure(PROC)
    cfg = proc.create_config()
    cfg.set_property('run-mode', run_mode)
    cfg.set_property('image', image)
    cfg.set_core_object_array('drawables', [drawable])
    for key, value in props.items():
        cfg.set_property(key.replace('_', '-'), value)
    t0 = time.time()
    rv = proc.run(cfg)
    dt = time.time() - t0
    status = rv.index(0)
    message = pdb.get_last_error() if status != Gimp.PDBStatusType.SUCCESS else ''
    return status, message, dt


def check_dialog_log(log):
    """GIMP found no missing or shared mnemonic in the dialog, and could keep the last values
    (it printed "couldn't serialize property" twice after every run from the dialog)."""
    import re
    complaints = [line for line in log.splitlines()
                  if re.search(r"python-fu-neural-style'?: (no|duplicate) mnemonic", line)]
    check('dialog: no "no mnemonic" / "duplicate mnemonic" warnings', not complaints,
          complaints[:6])
    warned = [line for line in log.splitlines() if "couldn't serialize property" in line]
    check('dialog: GIMP could keep the last values (no "couldn\'t serialize property")',
          not warned, warned[:2])


def hook_log():
    try:
        with open(os.path.join(HOOK, 'plugin.log'), encoding='utf-8') as f:
            return f.read().splitlines()
    except OSError:
        return []


def reset_hook(cancel_after=0, kill_at=None):
    """Clear the plug-in's test hook; cancel_after=N presses "Cancel" at the N-th progress
    event, kill_at='point' makes the plug-in SIGKILL itself there as GIMP's Cancel does."""
    for name in ('plugin.log', 'cancel-after', 'kill-at'):
        try:
            os.remove(os.path.join(HOOK, name))
        except OSError:
            pass
    for name, value in (('cancel-after', cancel_after), ('kill-at', kill_at)):
        if value:
            with open(os.path.join(HOOK, name), 'w') as f:
                f.write(str(value))


def logged_worker_pids():
    return [int(line.split()[1]) for line in hook_log() if line.startswith('worker-pid ')]


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie still answers kill(0): look at its state where /proc exists
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().split(') ', 1)[1][0] != 'Z'
    except OSError:
        return True


def gone_within(pid, seconds):
    deadline = time.time() + seconds
    while alive(pid) and time.time() < deadline:
        time.sleep(0.05)
    return not alive(pid)


def job_dirs():
    import tempfile
    return sorted(e for e in os.listdir(tempfile.gettempdir()) if e.startswith('neural-style-'))


def expected_options():
    with open(os.path.join(TEST, 'expected_options.json')) as f:
        return json.load(f)


def print_worker_torch():
    """A TIME line for benchmarks: the worker's torch and its thread count."""
    import subprocess
    about = subprocess.run([os.environ['NS_VENV_PY'], '-c',
                            'import torch; print(torch.__version__, torch.get_num_threads())'],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           universal_newlines=True).stdout.split()
    print('TIME worker torch %s, %s threads (OMP_NUM_THREADS=%s)' % (
        about[0] if about else '?', about[1] if len(about) > 1 else '?',
        os.environ.get('OMP_NUM_THREADS', 'unset')), flush=True)


# ---- the GUI tests' hands: requests to tests/gimp/screen.py (serve), which presses keys -----
REQ = os.path.join(OUT, 'req')
_requests = [0]


def ask(*steps):
    """Queue a request for screen.py; returns its number (see done)."""
    os.makedirs(REQ, exist_ok=True)
    n = _requests[0]
    _requests[0] += 1
    path = os.path.join(REQ, '%03d.json' % n)
    with open(path + '.part', 'w') as f:
        json.dump(list(steps), f)
    os.replace(path + '.part', path)
    return n


def done(n, seconds=180):
    """screen.py's report on request n: {'ok': ..., 'log': [...], 'error': ...}."""
    path = os.path.join(REQ, '%03d.done' % n)
    deadline = time.time() + seconds
    while not os.path.exists(path) and time.time() < deadline:
        time.sleep(0.1)
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {'ok': False, 'error': 'no answer from screen.py within %d s' % seconds}
