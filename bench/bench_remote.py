"""The worker over SSH (issue 23): Fast at 1024 px through ssh to localhost against the local
warm worker in the same run, where the remote's extra time goes, and the bytes on the wire at
1024 and 6000x4000 px.

    .venv/bin/python bench/bench_remote.py            # about 3 min on 2 shared cores
    .venv/bin/python bench/bench_remote.py --quick    # 3 warm runs each, no 6000x4000 run

Run it with the checkout's venv (torch, Pillow, the default Fast model in ~/.cache/nst_core),
on a machine with OpenSSH's server and client (Debian: openssh-server, openssh-client).

It starts a real sshd on 127.0.0.1 (tests/sshd.py: throw-away host and user keys) and runs Fast
(method fast, size 0: the content's own size) on samples/picos.jpg resized to 1024x768 with
samples/the_scream.jpg (sent at the size the plug-in sends it, 512 px on its short side),
through nst_client.run_job as the plug-in does:
(a) local: the warm worker, its first run (which starts it) and then N warm runs;
(b) remote: ssh to 127.0.0.1 running `python -m nst_core remote`, the python a wrapper around
    this venv's with an XDG_RUNTIME_DIR of its own, so that the remote warm worker is another
    process than (a)'s: the first run (starts it) and N warm runs;
(c) remote with the user's own ssh multiplexing (ControlMaster=auto, ControlPersist=60 in
    ssh_command, as a user would put them in ~/.ssh/config): ssh's log-in paid once.
The warm runs are interleaved (a, b, c, a, b, c, ...) on a shared, noisy machine; medians.

Where the remote's time goes, from the hook log's timestamps (nst_client.Remote logs 'ssh:',
'remote: hello', 'remote: sent N bytes', 'remote: received NAME: ...'), the start event and
the warm workers' own logs ('job ...: done in X s'); `ssh HOST true` and
`ssh HOST PYTHON -c pass` alone, for ssh's connect and log-in and the remote Python's start.

Bytes: what the request carries (the request line and the files packed by nst_protocol.pack:
zlib level 1 where it saves >= 10 %) and what comes back (the result), raw and packed, what
pack/unpack cost, and what that takes on 100 Mbit/s and 1 Gbit/s links (computed: bytes / rate,
no latency), at 1024x768 and 6000x4000 (picos.jpg cut to 3:2 and enlarged). The 6000x4000
picture is also run once through ssh (not with --quick) for its real result and time.

Target (issue 23): the median warm remote run <= 1.5x the median warm local run. Figures are
for the run that prints them; pictures and figures go to out/bench_remote/.
"""
import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from importlib import util
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / 'out' / 'bench_remote'
sys.path.insert(0, str(ROOT))
import nst_client  # noqa: E402
import nst_protocol  # noqa: E402

PHOTO = ROOT / 'samples' / 'picos.jpg'        # CC BY 4.0, in the product's samples
PAINTING = ROOT / 'samples' / 'the_scream.jpg'
SIDE = 1024
BIG = (6000, 4000)
TARGET = 1.5
LINKS = (('100 Mbit/s', 100e6), ('1 Gbit/s', 1e9))


def load_sshd():
    """tests/sshd.py, by path (tests/ is no package)."""
    spec = util.spec_from_file_location('sshd', ROOT / 'tests' / 'sshd.py')
    module = util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def median(values):
    s = sorted(values)
    n = len(s)
    return None if not n else s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def machine():
    model = '?'
    with open('/proc/cpuinfo') as f:
        for line in f:
            if line.startswith('model name'):
                model = line.split(':', 1)[1].strip()
                break
    return '%s, %d cores, load average %.1f' % (model, os.cpu_count(), os.getloadavg()[0])


# ---------------------------------------------------------------- pictures

def pictures(work):
    """(content 1024 px, content 6000x4000, painting as the plug-in sends it for Fast): RGB."""
    photo = Image.open(PHOTO).convert('RGB')
    k = SIDE / max(photo.size)
    small = photo.resize((round(photo.width * k), round(photo.height * k)), Image.LANCZOS)
    big = ImageOps.fit(photo, BIG, Image.BICUBIC)
    painting = Image.open(PAINTING).convert('RGB')
    side = nst_protocol.style_side('fast', *painting.size)
    if side:
        k = side / max(painting.size)
        painting = painting.resize((max(1, int(painting.width * k)),
                                    max(1, int(painting.height * k))), Image.LANCZOS)
    small.save(work / 'content_1024.png')
    return small, big, painting


# ---------------------------------------------------------------- one run

class Clock(nst_client.Hooks, nst_client.Handler):
    """The hook log and the start event, each with its time since the run began."""

    def __init__(self):
        self.t0 = time.perf_counter()
        self.lines, self.start = [], None

    def log(self, message):
        self.lines.append((time.perf_counter() - self.t0, message))

    def started(self, event):
        self.start = time.perf_counter() - self.t0

    def at(self, prefix):
        return next(((t, m) for t, m in self.lines if m.startswith(prefix)), (None, None))


def run_once(config, content, painting, label, keep=None):
    """One Fast job through nst_client.run_job: its times, bytes and result."""
    clock = Clock()
    with nst_client.JobFolder(config, clock) as folder:
        c = folder.buffer('content.rgba', content.width, content.height,
                          content.convert('RGBA').tobytes())
        s = folder.buffer('style0.rgba', painting.width, painting.height,
                          painting.convert('RGBA').tobytes())
        job = folder.write_job(c, [s], {'method': 'fast', 'size': 0})
        clock.t0 = time.perf_counter()
        nst_client.run_job(config, job, clock, hooks=clock)
        total = time.perf_counter() - clock.t0
        result = folder.read('result.rgba', content.width, content.height)
    row = dict(label=label, seconds=total, start=clock.start, log=clock.lines)
    row['kind'] = next(m.split()[2] for _, m in clock.lines if m.startswith('worker-pid '))
    row['pid'] = int(next(m.split()[1] for _, m in clock.lines if m.startswith('worker-pid ')))
    row['started_worker'] = [int(m.split()[-1]) for _, m in clock.lines
                             if m.startswith('warm worker: started pid ')]
    for key, prefix in (('ssh', 'ssh: '), ('hello', 'remote: hello'),
                        ('sent', 'remote: sent '), ('received', 'remote: received result'),
                        ('exit', 'worker exit')):
        row[key], message = clock.at(prefix)
        if key == 'sent' and message:
            row['sent_bytes'] = int(message.split()[2])
        if key == 'received' and message:
            words = message.split()
            row['received_bytes'], row['received_encoding'] = int(words[3]), words[5][:-1]
            row['receive_seconds'] = float(words[-2])
    print('  %-34s %6.2f s  %s' % (label, total, ', '.join(
        '%s %.3f' % (k, row[k]) for k in ('hello', 'sent', 'start', 'received', 'exit')
        if row.get(k) is not None)), flush=True)
    if keep:
        Image.frombytes('RGBA', content.size, result).convert('RGB').save(keep)
    row['result_digest'] = hashlib.sha256(result).hexdigest()[:16]
    return row, result


def job_seconds(runtime):
    """The warm worker's own times per job, from its log: ['job PATH: done in X s', ...]."""
    times = []
    folder = Path(runtime) / 'neural-style'
    for log in sorted(folder.glob('worker-*.log')):
        for line in log.read_text(errors='replace').splitlines():
            if ': done in ' in line and ' job ' in line:
                times.append(float(line.rsplit(' in ', 1)[1].split()[0]))
    return times


# ---------------------------------------------------------------- ssh alone

def timed(argv, rounds):
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    return times


def ssh_alone(config, rounds):
    """`ssh HOST true`, `ssh HOST PYTHON -c pass`: ssh's connect and log-in, and the remote
    Python's start on top (the same argv the client builds, with another command)."""
    spec = nst_client.remote_of(config)
    base = spec.argv(config)[:-1]                 # up to the host
    return dict(ssh_true=timed(base + ['true'], rounds),
                ssh_python=timed(base + [spec.python + ' -c pass'], rounds),
                ssh_python_import=timed(
                    base + [spec.python + ' -c "import nst_client, nst_core.cli, '
                            'nst_core.relay"'], rounds))


# ---------------------------------------------------------------- bytes on the wire

def wire(name, request_files, result):
    """Raw and packed sizes and pack/unpack times of the request's files and the result."""
    rows = []
    for what, data in list(request_files) + [('result (received)', result)]:
        packs, unpacks = [], []
        for _ in range(3):
            t = time.perf_counter()
            encoding, payload = nst_protocol.pack(data)
            packs.append(time.perf_counter() - t)
            t = time.perf_counter()
            nst_protocol.unpack(encoding, payload)
            unpacks.append(time.perf_counter() - t)
        rows.append(dict(picture=name, what=what, raw=len(data), packed=len(payload),
                         encoding=encoding, pack_s=median(packs), unpack_s=median(unpacks)))
    return rows


def rgba(image):
    return image.convert('RGBA').tobytes()


# ---------------------------------------------------------------- cleanup

def our_workers(runtimes):
    """pid: cmdline of the `nst_core serve` processes whose XDG_RUNTIME_DIR is one of ours
    (this run's private folders: nobody else's processes)."""
    found = {}
    wanted = {('XDG_RUNTIME_DIR=%s' % r).encode() for r in runtimes}
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/environ' % entry, 'rb') as f:
                env = set(f.read().split(b'\0'))
            with open('/proc/%s/cmdline' % entry, 'rb') as f:
                args = f.read().split(b'\0')
        except OSError:
            continue
        if env & wanted and b'serve' in args:
            found[int(entry)] = b' '.join(args).decode(errors='replace')
    return found


def rss_mb(pid):
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None


def stop(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(os.path.exists('/proc/%d' % p) for p in pids):
        for p in pids:
            try:
                os.waitpid(p, os.WNOHANG)     # our children (the local one): reap
            except OSError:
                pass
        time.sleep(0.1)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


# ---------------------------------------------------------------- the report

def mb(n):
    return n / 1e6


def report(runs, alone, wire_rows, big, jobs, rss, same):
    print('\nMachine: %s. Figures are for this run only (shared, loaded machine).' % machine())
    labels = [('local', 'local warm worker'), ('remote', 'ssh to 127.0.0.1'),
              ('remote_cm', 'ssh to 127.0.0.1, ControlPersist')]
    print('\nFast at 1024x768 (picos.jpg + the_scream.jpg), nst_client.run_job to the '
          'result in the job folder, seconds\n')
    print('| | first run (starts the warm worker) | warm runs, median | warm runs | '
          'warm / local warm |\n|---|---|---|---|---|')
    local = median([r['seconds'] for r in runs['local'][1:]])
    ratios = {}
    for key, label in labels:
        if not runs.get(key):
            continue
        warm = [r['seconds'] for r in runs[key][1:]]
        ratios[key] = median(warm) / local
        print('| %s | %.2f | %.2f | %s | %.2fx |' % (
            label, runs[key][0]['seconds'], median(warm), ' '.join('%.2f' % s for s in warm),
            ratios[key]))
    print('\nwhere a warm run\'s time goes (medians over the warm runs, seconds from the '
          'call):\n')
    print('| phase | local | ssh | ssh, ControlPersist |\n|---|---|---|---|')

    def med(key, fn):
        values = [fn(r) for r in runs.get(key, [])[1:]]
        values = [v for v in values if v is not None]
        return '%.3f' % median(values) if values else '-'

    def gap(a, b):
        return lambda r: r[b] - r[a] if r.get(a) is not None and r.get(b) is not None else None

    phases = [
        ('ssh started, its connect and log-in, the remote Python to its hello',
         lambda r: r.get('hello')),
        ('the request written into ssh after the hello (packed while ssh logs in)',
         gap('hello', 'sent')),
        ('the start event (local: connect to the warm worker, job sent; ssh: from sent: the '
         'remote end unpacks, writes the job, reaches its warm worker)',
         lambda r: r['start'] - (r.get('sent') or 0)),
        ('from the start event to the last event (the job, the result received)',
         lambda r: (r.get('received') or r['exit']) - r['start']),
        ('  of which the result received (read, unpacked, written)',
         lambda r: r.get('receive_seconds')),
        ('the end (local: worker exit; ssh: the remote end and ssh exit) after the result',
         lambda r: r['seconds'] - (r.get('received') or r['exit'])),
        ('whole run', lambda r: r['seconds'])]
    for label, fn in phases:
        print('| %s | %s | %s | %s |' % (label, med('local', fn), med('remote', fn),
                                         med('remote_cm', fn)))
    print('| the job in the warm worker (its log: done in X s), median of warm runs | %s |'
          % ' | '.join('%.2f' % median(jobs[k][1:]) if len(jobs.get(k) or []) > 1 else '-'
                       for k in ('local', 'remote', 'remote_cm')))
    print('\nssh alone, medians of %d: `ssh HOST true` %.3f s; `ssh HOST PYTHON -c pass` '
          '%.3f s (the remote Python\'s start %.3f s); `... -c "import nst_client, '
          'nst_core.cli, nst_core.relay"` %.3f s' % (
              len(alone['ssh_true']), median(alone['ssh_true']), median(alone['ssh_python']),
              median(alone['ssh_python']) - median(alone['ssh_true']),
              median(alone['ssh_python_import'])))
    if alone.get('ssh_true_cm'):
        print('with ControlPersist (the master up): `ssh HOST true` %.3f s' %
              median(alone['ssh_true_cm']))
    print('\nbytes on the wire per run (nst_protocol.pack: zlib level 1 where it saves '
          '>= 10 %%; pack/unpack: this CPU, one core)\n')
    print('| picture | what | raw MB | on the wire MB | encoding | pack s | unpack s | '
          + ' | '.join('%s s' % name for name, _ in LINKS) + ' |')
    print('|---' * (7 + len(LINKS)) + '|')
    for row in wire_rows:
        print('| %s | %s | %.2f | %.2f | %s | %.3f | %.3f | %s |' % (
            row['picture'], row['what'], mb(row['raw']), mb(row['packed']), row['encoding'],
            row['pack_s'], row['unpack_s'],
            ' | '.join('%.2f' % (row['packed'] * 8 / rate) for _, rate in LINKS)))
    for picture in sorted({r['picture'] for r in wire_rows}):
        rows = [r for r in wire_rows if r['picture'] == picture]
        sent = sum(r['packed'] for r in rows if not r['what'].startswith('result'))
        back = sum(r['packed'] for r in rows if r['what'].startswith('result'))
        print('%s: sent %.2f MB, received %.2f MB, %.2f MB a run: %s' % (
            picture, mb(sent), mb(back), mb(sent + back), ', '.join(
                '%.2f s on %s' % ((sent + back) * 8 / rate, name) for name, rate in LINKS)))
    measured = [r for k in ('remote', 'remote_cm') for r in runs.get(k, [])
                if r.get('sent_bytes')]
    if measured:
        r = measured[-1]
        print('measured by the client at 1024x768 (its hook log): sent %d bytes (request line '
              '+ files), received %d bytes (%s)' % (r['sent_bytes'], r['received_bytes'],
                                                    r['received_encoding']))
    if big:
        job = big.get('job') or float('nan')
        print('\n6000x4000 through ssh, once (the remote warm worker already warm): %.1f s, '
              'the job itself %.1f s in the warm worker; the hello at %.2f s, the request '
              'written at %.2f s (packing it began with ssh), the start event at %.2f s, the '
              'result in at %.2f s (%.2f s after the job, of which %.2f s reading and '
              'unpacking it here: the rest is the remote end reading and packing it); sent %d '
              'bytes, received %d bytes (%s)' % (
                  big['seconds'], job, big['hello'], big['sent'], big['start'],
                  big['received'], big['received'] - big['start'] - job,
                  big['receive_seconds'], big['sent_bytes'], big['received_bytes'],
                  big['received_encoding']))
    print('\nthe same picture locally and through ssh: %s' % same)
    print('warm workers\' peak RSS (VmHWM): %s' % (', '.join(
        '%s %.0f MB' % kv for kv in rss.items()) or 'n/a'))
    print()
    for key, label in labels[1:]:
        if key in ratios:
            target = key == 'remote'
            print('%-44s %.2fx%s' % ('%s warm / local warm' % label, ratios[key],
                                     '  %s (target <= %.1fx)' % (
                                         'PASS' if ratios[key] <= TARGET else 'MISS', TARGET)
                                     if target else '  (for reference)'))
    return ratios


# ---------------------------------------------------------------- main

def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--warm', type=int, default=7, help='warm runs of each kind')
    parser.add_argument('--quick', action='store_true',
                        help='3 warm runs each, 3 rounds of ssh alone, no 6000x4000 run')
    parser.add_argument('--no-big', action='store_true', help='no 6000x4000 run')
    parser.add_argument('--no-control-persist', action='store_true',
                        help='no (c): ssh with ControlMaster/ControlPersist')
    args = parser.parse_args()
    warm = 3 if args.quick else args.warm
    sshd = load_sshd()
    if sshd.MISSING:
        sys.exit(sshd.MISSING)
    OUT.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix='nsb-', dir='/tmp'))   # short: AF_UNIX paths
    os.chmod(root, 0o700)
    local_rt, remote_rt = root / 'l', root / 'r'
    for d in (local_rt, remote_rt):
        d.mkdir(mode=0o700)
    os.environ['XDG_RUNTIME_DIR'] = str(local_rt)       # (a)'s warm worker, private here
    wrapper = root / 'python'
    wrapper.write_text('#!/bin/sh\nXDG_RUNTIME_DIR=%s exec %s "$@"\n' % (remote_rt,
                                                                        sys.executable))
    wrapper.chmod(0o755)
    server = sshd.SSHServer(root / 'sshd')
    control = ['-o', 'ControlMaster=auto', '-o', 'ControlPath=%s' % (root / 'cm-%C'),
               '-o', 'ControlPersist=60']
    configs = {}
    for key, extra in (('local', {}),
                       ('remote', dict(remote=server.url(str(wrapper)),
                                       ssh_command=server.ssh_command)),
                       ('remote_cm', dict(remote=server.url(str(wrapper)),
                                          ssh_command=server.ssh_command + control))):
        if key == 'remote_cm' and args.no_control_persist:
            continue
        path = root / ('%s.json' % key)
        config = dict({'version': 1, 'python': sys.executable, 'stall_seconds': 600,
                       'time_limit_seconds': 0, 'keep_alive_seconds': 600}, **extra)
        path.write_text(json.dumps(config))
        configs[key] = dict(config, _path=str(path))
    print('Machine: %s' % machine(), flush=True)
    started = time.time()
    small, big_content, painting = pictures(OUT)
    runs = {k: [] for k in configs}
    results, big = {}, None
    try:
        server.start()
        alone = ssh_alone(configs['remote'], 3 if args.quick else 7)
        print('ssh alone: true %s; python -c pass %s' % tuple(
            ' '.join('%.3f' % t for t in alone[k]) for k in ('ssh_true', 'ssh_python')),
            flush=True)
        for key in configs:          # the first runs: each starts its warm worker
            row, results[key] = run_once(configs[key], small, painting, '%s, first' % key,
                                         OUT / ('%s.png' % key))
            runs[key].append(row)
        if 'remote_cm' in configs:   # the master is up now: ssh's own cost with it
            alone['ssh_true_cm'] = timed(
                nst_client.remote_of(configs['remote_cm']).argv(configs['remote_cm'])[:-1]
                + ['true'], len(alone['ssh_true']))
        for i in range(warm):
            for key in configs:
                row, _ = run_once(configs[key], small, painting, '%s, warm %d' % (key, i + 1))
                runs[key].append(row)
        if not (args.quick or args.no_big):
            row, big_result = run_once(configs['remote'], big_content, painting,
                                       'remote, 6000x4000', OUT / 'remote_6000x4000.jpg')
            jobs = job_seconds(remote_rt)
            row['job'] = jobs[-1] if jobs else None
            big = row
        else:
            big_result = None
        workers = our_workers([local_rt, remote_rt])
        rss = {('local' if str(local_rt) in cmd else 'remote') + ' pid %d' % pid: rss_mb(pid)
               for pid, cmd in workers.items()}
    finally:
        if 'remote_cm' in configs:
            subprocess.run(server.ssh_command + control + ['-O', 'exit', '127.0.0.1'],
                           capture_output=True)
        server.stop()
        workers = our_workers([local_rt, remote_rt])
        stop(list(workers))
    # the job times in each warm worker's log, in run order: the remote one serves (b) and (c)
    local_jobs, remote_jobs = job_seconds(local_rt), job_seconds(remote_rt)
    jobs = {'local': local_jobs}
    if len(remote_jobs) >= 1 + len(configs) - 1:
        order = remote_jobs[:len(configs) - 1]          # the first runs: remote, remote_cm
        rest = remote_jobs[len(configs) - 1:len(configs) - 1 + warm * (len(configs) - 1)]
        for j, key in enumerate(k for k in configs if k != 'local'):
            jobs[key] = [order[j]] + rest[j::len(configs) - 1]
    wire_rows = wire('1024x768', [('content', rgba(small)), ('painting', rgba(painting))],
                     results['remote'])
    wire_rows += wire('6000x4000', [('content', rgba(big_content)),
                                    ('painting', rgba(painting))],
                      big_result if big_result is not None else
                      rgba(Image.fromarray(np.asarray(Image.frombytes(
                          'RGBA', small.size, results['remote']).convert('RGB'))).resize(
                              BIG, Image.BICUBIC)))
    if big_result is None:
        wire_rows[-1]['what'] += ', stand-in: the 1024 px result enlarged'
    same = ', '.join('%s %s' % (k, 'identical' if results[k] == results['local'] else
                                'DIFFERENT') for k in results if k != 'local')
    ratios = report(runs, alone, wire_rows, big, jobs, rss, same)
    left = our_workers([local_rt, remote_rt])
    print('left running: %s' % (left or 'none of this run\'s warm workers'))
    print('(%.0f s in all; load average now %.1f)' % (time.time() - started,
                                                       os.getloadavg()[0]))
    (OUT / 'results.json').write_text(json.dumps(dict(
        runs=runs, alone=alone, wire=wire_rows, big=big, jobs=jobs, rss=rss, same=same,
        ratios=ratios, machine=machine()), indent=1, default=str))
    shutil.rmtree(root, ignore_errors=True)
    return 0 if ratios.get('remote', 99) <= TARGET and not left else 1


if __name__ == '__main__':
    sys.exit(main())
