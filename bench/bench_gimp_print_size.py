"""Quality at print size in real GIMP: a 6000x4000 layer, size 0 (the layer's own), Draft.

    sudo .venv/bin/python bench/bench_gimp_print_size.py          # GIMP 3.0 (trixie chroot)
    sudo SUITE=forky .venv/bin/python bench/bench_gimp_print_size.py

The photo is the shared two_wings.jpg (2560x1600) enlarged with Lanczos to 6400x4000 and
cropped to 6000x4000 (no shared photo is that large); the painting is starry_night.jpg. They are
written into the cached chroot of tests/gimp/run.sh, which this runs with itself as the batch
script (GUI off, the worker with all of torch's threads). Inside gimp-console the installed
plug-in is called through the PDB as a user's OK would, and the new layer's pixels are written
back. On the host: wall time from the PDB call to the layer, the worker's peak RSS (VmHWM of
every nst_core process, sampled twice a second), the tile plan the worker reported, the seam
figure of bench_quality_sizes.py at the final scale's tile borders (and, as the control, the
same figure at the same lines of the photo itself; and each border against the lines next to
it: see bench_quality_sizes.py), the judge's figures (it reads at 512 px),
and full-size crops of the borders in out/bench_gimp_print_size/ to look at.
"""
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

SIDE = (6000, 4000)
PRESET = 'draft'
SHARED = '/opt/nst-bench-print'          # inside the chroot


def in_gimp():
    """Runs inside gimp-console (python-fu-eval)."""
    sys.path.insert(0, os.environ['NS_TEST'])
    import fixtures as fx
    from gi.repository import Gimp, Gio

    load = Gimp.RunMode.NONINTERACTIVE
    img = Gimp.file_load(load, Gio.File.new_for_path(os.path.join(SHARED, 'photo.png')))
    photo = img.get_layers()[0]
    style = Gimp.file_load_layer(load, img, Gio.File.new_for_path(
        os.path.join(SHARED, 'painting.jpg')))
    img.insert_layer(style, None, 0)
    fx.reset_hook()
    st, msg, dt = fx.run_plugin(img, photo, style_layer=style, method='quality',
                                preset=PRESET, size=0)
    for line in fx.hook_log():
        if line.startswith('text '):
            print('TIME note %s' % line[5:], flush=True)
    if st != Gimp.PDBStatusType.SUCCESS:
        print('TIME FAILED %s' % msg, flush=True)
        return
    new = img.get_layers()[0]
    with open(os.path.join(SHARED, 'result.rgba'), 'wb') as f:
        f.write(fx.pixels(new))
    print('TIME result %dx%d in %.0f s' % (new.get_width(), new.get_height(), dt), flush=True)
    img.delete()


def make_inputs(where, images):
    from PIL import Image
    photo = Image.open(images / 'two_wings.jpg').convert('RGB')
    k = max(SIDE[0] / photo.width, SIDE[1] / photo.height)
    big = photo.resize((round(photo.width * k), round(photo.height * k)), Image.LANCZOS)
    x, y = (big.width - SIDE[0]) // 2, (big.height - SIDE[1]) // 2
    big = big.crop((x, y, x + SIDE[0], y + SIDE[1]))
    where.mkdir(parents=True, exist_ok=True)
    big.save(where / 'photo.png')
    (where / 'painting.jpg').write_bytes((images / 'starry_night.jpg').read_bytes())
    return big


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
    from gimp_chroot import chroot_root
    root = chroot_root()
    if not root.is_dir():
        sys.exit('no cached chroot at %s: run tests/gimp/run.sh once first' % root)
    shared = root / SHARED.lstrip('/')
    photo = make_inputs(shared, sizes.IMAGES)
    (shared / 'result.rgba').unlink(missing_ok=True)
    env = dict(os.environ, BATCH_SCRIPT=str(Path(__file__).resolve()), GUI='0',
               NS_TEST_THREADS='all', TEST_TIMEOUT='7200')
    rss = PeakRSS()
    rss.start()
    proc = subprocess.run(['bash', str(here.parent / 'tests' / 'gimp' / 'run.sh')], env=env,
                          stdout=subprocess.PIPE, text=True)
    rss.done.set()
    print(proc.stdout)
    raw = shared / 'result.rgba'
    if proc.returncode or not raw.exists():
        sys.exit('the GIMP run failed (exit %d)' % proc.returncode)
    out = sizes.OUT.parent / 'bench_gimp_print_size'
    out.mkdir(parents=True, exist_ok=True)
    result = Image.frombytes('RGBA', SIDE, raw.read_bytes()).convert('RGB')
    result.save(out / 'result.png')
    photo.save(out / 'photo.png')
    result.resize((SIDE[0] // 4, SIDE[1] // 4), Image.LANCZOS).save(out / 'result_small.png')
    tiles = [int(t) for t in re.findall(r'tiles: %d px in \d+ tiles .*?tile side (\d+)'
                                        % max(SIDE), proc.stdout)]
    print('worker peak RSS %.2f GB' % (rss.peak / 1e9))
    if tiles:
        seam = sizes.seams(out / 'result.png', tiles[0])[0]
        control = sizes.seams(out / 'result.png', tiles[0], like=out / 'photo.png')[0]
        local = sizes.local_seams(out / 'result.png', tiles[0])[0]
        near = sizes.local_seams(out / 'result.png', tiles[0], like=out / 'photo.png')[0]
        print('seams at %d px (tile side %d): largest %.2f; the photo at the same lines %.2f; '
              'against the lines next to each border: largest %.2f (the photo %.2f)'
              % (max(SIDE), tiles[0], seam, control, local, near))
        sizes.crops(out / 'result.png', tiles[0], max(SIDE), out)
    scores = sizes.judge([(out / 'photo.png', sizes.IMAGES / 'starry_night.jpg',
                           out / 'result.png', 'gimp %dx%d' % SIDE)], out)
    if scores:
        for label, row in scores.items():
            print('judged at 512 px (%s): %s' % (label, ' / '.join(
                '%s %.3f' % (k, row[k]) for k in sizes.KEYS)))
    print('pictures and border crops in', out)


if 'NS_TEST' in os.environ and 'Gimp' in globals():
    in_gimp()
elif __name__ == '__main__':
    sys.exit(on_host())
