"""Quality at print size in real GIMP, with the dialog's defaults: a 2560x1600 and a
6000x4000 layer, each at its own size.

    sudo .venv/bin/python bench/bench_gimp_print_size.py          # GIMP 3.0 (trixie chroot)
    sudo SUITE=forky .venv/bin/python bench/bench_gimp_print_size.py

The photos are the shared two_wings.jpg (2560x1600) as it is and enlarged with Lanczos to
6400x4000 and cropped to 6000x4000 (no shared photo is that large); the painting is
starry_night.jpg. They are written into the cached chroot of tests/gimp/run.sh, which this
runs with itself as the batch script (GUI off, the worker with all of torch's threads).
Inside gimp-console the installed plug-in is called through the PDB as a user's OK with the
dialog's defaults would (only the style layer and the method are set), once per layer, and
the new layers' pixels are written back. On the host: wall time from each PDB call to its
layer and the ratio of the two, the worker's peak RSS (VmHWM of every nst_core process,
sampled twice a second), the tile plans the worker reported, the judge's figures (it reads at
512 px), bench/full_size.py's figures (fine detail, lattice, frame), and full-size crops in
out/bench_gimp_print_size/ to look at.

Targets (issue 20): the 6000x4000 layer in at most 6x the 2560x1600 layer's time, within 4 GB.
"""
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

SIDES = [(2560, 1600), (6000, 4000)]
SHARED = '/opt/nst-bench-print'          # inside the chroot


def in_gimp():
    """Runs inside gimp-console (python-fu-eval)."""
    sys.path.insert(0, os.environ['NS_TEST'])
    import fixtures as fx
    from gi.repository import Gimp, Gio

    load = Gimp.RunMode.NONINTERACTIVE
    for side in SIDES:
        name = 'photo_%dx%d' % side
        img = Gimp.file_load(load, Gio.File.new_for_path(os.path.join(SHARED, name + '.png')))
        photo = img.get_layers()[0]
        style = Gimp.file_load_layer(load, img, Gio.File.new_for_path(
            os.path.join(SHARED, 'painting.jpg')))
        img.insert_layer(style, None, 0)
        fx.reset_hook()
        st, msg, dt = fx.run_plugin(img, photo, style_layer=style, method='quality')
        for line in fx.hook_log():
            if line.startswith('text '):
                print('TIME note %s' % line[5:], flush=True)
        if st != Gimp.PDBStatusType.SUCCESS:
            print('TIME FAILED %s' % msg, flush=True)
            return
        new = img.get_layers()[0]
        with open(os.path.join(SHARED, 'result_%dx%d.rgba' % side), 'wb') as f:
            f.write(fx.pixels(new))
        print('TIME result %dx%d in %.1f s' % (new.get_width(), new.get_height(), dt),
              flush=True)
        img.delete()


def make_inputs(where, images):
    from PIL import Image
    where.mkdir(parents=True, exist_ok=True)
    photo = Image.open(images / 'two_wings.jpg').convert('RGB')
    photos = {}
    for side in SIDES:
        k = max(side[0] / photo.width, side[1] / photo.height)
        big = photo.resize((round(photo.width * k), round(photo.height * k)), Image.LANCZOS) \
            if k != 1 else photo
        x, y = (big.width - side[0]) // 2, (big.height - side[1]) // 2
        photos[side] = big.crop((x, y, x + side[0], y + side[1]))
        photos[side].save(where / ('photo_%dx%d.png' % side))
    (where / 'painting.jpg').write_bytes((images / 'starry_night.jpg').read_bytes())
    return photos


class PeakRSS(threading.Thread):
    """Largest VmHWM of any nst_core process seen while it runs."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak, self.done = 0, threading.Event()

    def run(self):
        while not self.done.wait(0.5):
            for status in Path('/proc').glob('[0-9]*/status'):
                try:
                    cmd = (status.parent / 'cmdline').read_bytes()
                    if b'nst_core' not in cmd:
                        continue
                    hwm = re.search(r'VmHWM:\s+(\d+) kB', status.read_text())
                except OSError:
                    continue
                if hwm:
                    self.peak = max(self.peak, int(hwm.group(1)) * 1024)


def on_host():
    from PIL import Image
    here = Path(__file__).resolve().parent
    sys.path.insert(0, str(here))
    import bench_quality_sizes as sizes
    from full_size import figures
    from gimp_chroot import chroot_root
    root = chroot_root()
    if not root.is_dir():
        sys.exit('no cached chroot at %s: run tests/gimp/run.sh once first' % root)
    shared = root / SHARED.lstrip('/')
    photos = make_inputs(shared, sizes.IMAGES)
    for side in SIDES:
        (shared / ('result_%dx%d.rgba' % side)).unlink(missing_ok=True)
    env = dict(os.environ, BATCH_SCRIPT=str(Path(__file__).resolve()), GUI='0',
               NS_TEST_THREADS='all', TEST_TIMEOUT='7200')
    rss = PeakRSS()
    rss.start()
    proc = subprocess.run(['bash', str(here.parent / 'tests' / 'gimp' / 'run.sh')], env=env,
                          stdout=subprocess.PIPE, text=True)
    rss.done.set()
    print(proc.stdout)
    out = sizes.OUT.parent / 'bench_gimp_print_size'
    out.mkdir(parents=True, exist_ok=True)
    seconds = dict(re.findall(r'TIME result (\d+x\d+) in ([\d.]+) s', proc.stdout))
    rows = []
    for side in SIDES:
        raw, tag = shared / ('result_%dx%d.rgba' % side), '%dx%d' % side
        if proc.returncode or not raw.exists():
            sys.exit('the GIMP run failed (exit %d)' % proc.returncode)
        result = Image.frombytes('RGBA', side, raw.read_bytes()).convert('RGB')
        result.save(out / ('result_%s.png' % tag))
        photos[side].save(out / ('photo_%s.png' % tag))
        f = figures(result, photos[side])
        print('%s: %s s; fine detail %.2f, lattice %.1f (the photo %.1f), frame t/b/l/r %s'
              % (tag, seconds.get(tag), f['fine_detail'], f['lattice'], f['lattice_photo'],
                 ' '.join('%+.1f' % f['frame_' + e] for e in ('top', 'bottom', 'left',
                                                               'right'))))
        x, y = side[0] // 2, side[1] // 2
        result.crop((x - 300, y - 200, x + 300, y + 200)).save(out / ('crop_%s.png' % tag))
        rows.append((out / ('photo_%s.png' % tag), sizes.IMAGES / 'starry_night.jpg',
                     out / ('result_%s.png' % tag), tag))
    tags = ['%dx%d' % s for s in SIDES]
    if all(t in seconds for t in tags):
        print('%s / %s: %.2fx the time for %.2fx the pixels' % (
            tags[1], tags[0], float(seconds[tags[1]]) / float(seconds[tags[0]]),
            SIDES[1][0] * SIDES[1][1] / (SIDES[0][0] * SIDES[0][1])))
    print('worker peak RSS %.2f GB (the larger job)' % (rss.peak / 1e9))
    scores = sizes.judge(rows, out)
    for label, row in (scores or {}).items():
        print('judged at 512 px (%s): %s' % (label, ' / '.join(
            '%s %.3f' % (k, row[k]) for k in sizes.KEYS)))
    print('pictures and crops in', out)


if 'NS_TEST' in os.environ and 'Gimp' in globals():
    in_gimp()
elif __name__ == '__main__':
    sys.exit(on_host())
