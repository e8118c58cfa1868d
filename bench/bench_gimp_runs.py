"""What a GIMP user waits for: Fast and Quality runs of the installed plug-in in real GIMP,
with the torch install.py gives a user by default and torch's own thread count.

    sudo python3 bench/bench_gimp_runs.py                    # GIMP 3.0, install.py's default torch
    sudo NS_TORCH=system python3 bench/bench_gimp_runs.py    # Debian's python3-torch instead
    sudo SUITE=forky python3 bench/bench_gimp_runs.py        # GIMP 3.2

On the host this runs tests/gimp/run.sh (the cached chroot with real GIMP) with itself as the
batch script, NS_TORCH=default (install.py without --system-site-packages: PyTorch's
CPU-only index where reachable, else PyPI; the venv is cached in the chroot) and
NS_TEST_THREADS=all (no OMP_NUM_THREADS: torch picks its threads as in a user's GIMP).
Inside gimp-console it opens samples/coffee.jpg, adds samples/the_scream.jpg as a layer
on top (as File > Open as Layers does) and calls the plug-in through the PDB: Fast with the
dialog's defaults (the layer's own size) and Quality Draft and Normal at 512 px. Each run
is timed from the call to its return (worker start, torch import and model load included).
"""
import os
import subprocess
import sys

RUNS = [('Fast, defaults (the layer\'s size)', dict(method='fast')),
        ('Quality Draft, 512 px', dict(method='quality', preset='draft', size=512)),
        ('Quality Normal, 512 px (the defaults)', dict(method='quality', preset='normal',
                                                       size=512))]


def in_gimp():
    """Runs inside gimp-console (python-fu-eval)."""
    sys.path.insert(0, os.environ['NS_TEST'])
    import fixtures as fx
    from gi.repository import Gimp, Gio

    samples = os.path.join(os.environ.get('NS_SRC', '/opt/nst/src'), 'samples')
    fx.print_worker_torch()
    mode = Gimp.RunMode.NONINTERACTIVE
    img = Gimp.file_load(mode, Gio.File.new_for_path(os.path.join(samples, 'coffee.jpg')))
    photo = img.get_layers()[0]
    painting = Gimp.file_load_layer(mode, img,
                                    Gio.File.new_for_path(os.path.join(samples,
                                                                       'the_scream.jpg')))
    img.insert_layer(painting, None, 0)
    img.set_selected_layers([photo])
    print('TIME photo %dx%d, painting %dx%d' % (photo.get_width(), photo.get_height(),
                                                painting.get_width(), painting.get_height()),
          flush=True)
    for label, props in RUNS:
        fx.reset_hook()
        st, msg, dt = fx.run_plugin(img, photo, style_layer=painting, **props)
        if st != Gimp.PDBStatusType.SUCCESS:
            print('FAIL %s: (%s) %s' % (label, st, msg), flush=True)
            continue
        log = fx.hook_log()
        phases = dict(line.split()[1:3] for line in log if line.startswith('timing '))
        last = [line for line in log if line.startswith('progress ')][-1:]
        print('TIME %s: %.1f s in GIMP (%s; last status: %s)' % (
            label, dt, ', '.join('%s %s s' % kv for kv in phases.items()),
            last[0].split(' ', 2)[2] if last else '-'), flush=True)
        for layer in img.get_layers():
            if layer.get_name().startswith('Neural Style ('):
                img.remove_layer(layer)
    img.delete()


def on_host():
    here = os.path.dirname(os.path.abspath(__file__))
    run = os.path.join(here, os.pardir, 'tests', 'gimp', 'run.sh')
    env = dict(os.environ, BATCH_SCRIPT=os.path.abspath(__file__), GUI='0')
    env.setdefault('NS_TORCH', 'default')
    env.setdefault('NS_TEST_THREADS', 'all')
    return subprocess.call(['bash', run], env=env)


if 'NS_TEST' in os.environ and 'Gimp' in globals():
    in_gimp()
elif __name__ == '__main__':
    sys.exit(on_host())
