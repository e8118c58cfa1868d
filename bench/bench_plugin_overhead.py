"""The plug-in's own overhead on a 2048x2048 layer: pixel I/O, starting the worker, inserting
the layer. Target: <= 3 s in all.

    sudo python3 bench/bench_plugin_overhead.py          # GIMP 3.0 (trixie chroot)
    sudo SUITE=forky python3 bench/bench_plugin_overhead.py

On the host this runs tests/gimp/run.sh (the cached chroot with real GIMP) with itself as the
batch script and NS_TORCH=default (the torch install.py gives a user by default; NS_TORCH=system
for Debian's); inside gimp-console it calls the installed plug-in through the PDB with a
trivial worker: a stdlib-only Python that speaks protocol v1 and returns the content as the
result, so the time measured is the plug-in's, not the network's. It then runs the real
nst_core worker (method fast) once on the same layer, for comparison. What a user waits for in
whole runs: bench/bench_gimp_runs.py.
"""
import os
import subprocess
import sys

ROUNDS = 3
SIZE = 2048
TARGET = 3.0

TRIVIAL_WORKER = r'''#!/usr/bin/python3
# protocol v1 with nothing in between: result = content
import json, os, sys, time
t0 = time.time()
job_path = sys.argv[-1]
base = os.path.dirname(job_path)
job = json.load(open(job_path))
def say(**event):
    sys.stdout.write(json.dumps(event) + '\n'); sys.stdout.flush()
say(event='start', protocol=1, pid=os.getpid(), version='trivial')
data = open(os.path.join(base, job['content']['path']), 'rb').read()
say(event='progress', fraction=0.5, stage='copy', step=1, total=2, elapsed=time.time() - t0,
    eta=None, loss=None)
out = os.path.join(base, job['output']['path'])
open(out + '.part', 'wb').write(data)
os.replace(out + '.part', out)
say(event='done', output=out, width=job['content']['width'], height=job['content']['height'],
    elapsed=time.time() - t0)
'''


def in_gimp():
    """Runs inside gimp-console (python-fu-eval)."""
    import json
    import time
    sys.path.insert(0, os.environ['NS_TEST'])
    import fixtures as fx
    from gi.repository import Gimp

    config = os.path.join(os.environ['NS_PLUGIN_DIR'], 'neural_style.json')
    worker = os.path.join(fx.OUT, 'trivial-worker')
    with open(worker, 'w') as f:
        f.write(TRIVIAL_WORKER)
    os.chmod(worker, 0o755)
    with open(config) as f:
        real = json.load(f)

    img = Gimp.Image.new(SIZE, SIZE, Gimp.ImageBaseType.RGB)
    row = bytes(v for x in range(SIZE) for v in (x % 256, (x * 7) % 256, 128, 255))
    content = fx.new_layer(img, 'photo', SIZE, SIZE, row * SIZE)
    style = fx.new_layer(img, 'painting', 256, 256, fx.style_pixels(256, 256))
    img.reorder_item(style, None, 1)

    def once(label):
        fx.reset_hook()
        st, msg, dt = fx.run_plugin(img, content, style_layer=style, method='fast', size=0)
        if st != Gimp.PDBStatusType.SUCCESS:
            raise RuntimeError('%s: %s' % (label, msg))
        img.remove_layer(img.get_layers()[0])
        phases = dict(line.split()[1:3] for line in fx.hook_log() if line.startswith('timing '))
        print('TIME %s %.2f s  (%s)' % (label, dt, ', '.join('%s %s' % kv for kv in
                                                               phases.items())), flush=True)
        return dt

    try:
        with open(config, 'w') as f:
            json.dump(dict(real, python=worker), f)
        times = [once('trivial worker, round %d' % (i + 1)) for i in range(ROUNDS)]
    finally:
        with open(config, 'w') as f:
            json.dump(real, f)
    best = min(times)
    print('TIME plug-in overhead %dx%d: best %.2f s of %d (target <= %.1f s): %s'
          % (SIZE, SIZE, best, ROUNDS, TARGET, 'PASS' if best <= TARGET else 'FAIL'), flush=True)
    once('real nst_core worker, fast, %dx%d' % (SIZE, SIZE))
    img.delete()


def on_host():
    here = os.path.dirname(os.path.abspath(__file__))
    run = os.path.join(here, os.pardir, 'tests', 'gimp', 'run.sh')
    env = dict(os.environ, BATCH_SCRIPT=os.path.abspath(__file__), GUI='0')
    env.setdefault('NS_TORCH', 'default')       # the real-worker line: the torch users get
    return subprocess.call(['bash', run], env=env)


if 'NS_TEST' in os.environ and 'Gimp' in globals():
    in_gimp()
elif __name__ == '__main__':
    sys.exit(on_host())
