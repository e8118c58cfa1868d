"""The warm worker as the plug-in runs it: a real `serve` subprocess on a Unix socket, job files,
JSON events on the connection (docs/protocol.md, "The warm worker")."""
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time

import pytest

from conftest import ROOT, scene, stripes
import nst_protocol as protocol
from test_worker import write_job

KEY = 'test-key'
LONG = dict(size=128, iterations=100000)     # a Quality job that runs until cancelled


# --- a tiny client, as the plug-in's speaks ---------------------------------------------------

class Client:
    def __init__(self, path, timeout=120):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.file = self.sock.makefile('rb')
        self.hello = self.read()

    def read(self):
        line = self.file.readline()
        return protocol.parse_event(line.decode('utf-8')) if line else None

    def send(self, request):
        self.sock.sendall((json.dumps(request) + '\n').encode('utf-8'))

    def events(self):
        """Every event until the server closes the connection."""
        found = []
        while True:
            event = self.read()
            if event is None:
                return found
            found.append(event)

    def until(self, kind, step=0):
        """The first `kind` event (a progress event: of at least `step` steps)."""
        while True:
            event = self.read()
            assert event is not None, 'connection closed before a %s event' % kind
            if event['event'] == kind and event.get('step', 0) >= step:
                return event

    def close(self):
        self.file.close()
        self.sock.close()


def run_job(path, job):
    client = Client(path)
    assert client.hello['busy'] is False, client.hello
    client.send({'job': job})
    events = client.events()
    client.close()
    return events


# --- fixtures -------------------------------------------------------------------------------

@pytest.fixture
def private_dir():
    # AF_UNIX paths must be short (< 108 bytes): pytest's tmp_path can be longer
    folder = tempfile.mkdtemp(prefix='nst-serve-', dir='/tmp')
    os.chmod(folder, 0o700)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def start_server(folder, keep_alive=60, sock=None, patch=None, stdout=subprocess.DEVNULL):
    """`serve` as the plug-in starts it; patch: Python run first, in the same process (the
    server then starts through server.main)."""
    sock = sock or os.path.join(folder, 'worker-%s.sock' % KEY)
    if patch is None:
        argv = ['-m', 'nst_core', 'serve', '--socket', sock, '--key', KEY, '--keep-alive',
                str(keep_alive)]
    else:
        argv = ['-c', patch + '\nfrom nst_core import server\nserver.main(%r, %r, %r)'
                % (sock, KEY, keep_alive)]
    log = open(os.path.join(folder, 'worker.log'), 'ab')
    proc = subprocess.Popen([sys.executable, *argv], cwd=ROOT, stdin=subprocess.DEVNULL,
                            stdout=stdout, stderr=log,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    log.close()
    proc.sock, proc.log = sock, os.path.join(folder, 'worker.log')
    return proc


def wait_listening(proc, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, 'server exited: ' + log_of(proc)
        if ': serving ' in log_of(proc):          # logged once it listens
            assert stat.S_ISSOCK(os.lstat(proc.sock).st_mode)
            return proc
        time.sleep(0.05)
    pytest.fail('server did not bind its socket: ' + log_of(proc))


def log_of(proc):
    with open(proc.log, encoding='utf-8', errors='replace') as f:
        return f.read()


@pytest.fixture
def server(private_dir):
    proc = wait_listening(start_server(private_dir))
    yield proc
    if proc.poll() is None:
        proc.terminate()
        proc.wait(timeout=10)


def job_dir(parent, name):
    path = os.path.join(parent, name)
    os.mkdir(path, 0o700)
    from pathlib import Path
    return Path(path)


def quick_job(parent, name, **options):
    return write_job(job_dir(parent, name), scene(48, 36), [stripes(32, 32)],
                     **dict(dict(size=48, preset='draft', iterations=3), **options))


def wait_gone(proc, timeout):
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail('server still running after %s s: %s' % (timeout, log_of(proc)))


# --- jobs -----------------------------------------------------------------------------------

def test_two_jobs_run_in_one_process(server, private_dir):
    pids = []
    for i, (w, h) in enumerate([(48, 36), (30, 40)]):
        folder = job_dir(private_dir, 'job%d' % i)
        job = write_job(folder, scene(w, h), [stripes(32, 32)], size=48, preset='draft',
                        iterations=3)
        events = run_job(server.sock, job)
        kinds = [e['event'] for e in events]
        assert kinds[0] == 'start' and kinds[-1] == 'done', events
        assert (events[-1]['width'], events[-1]['height']) == (w, h)
        assert (folder / 'result.rgba').stat().st_size == w * h * 4
        pids.append(events[0]['pid'])
    assert pids[0] == pids[1] == server.pid
    assert server.poll() is None
    assert log_of(server).count(': done in ') == 2


def test_a_client_gone_mid_job_cancels_it_and_the_server_stays(server, private_dir):
    folder = job_dir(private_dir, 'long')
    job = write_job(folder, scene(128, 96), [stripes()], **LONG)
    client = Client(server.sock)
    client.send({'job': job})
    client.until('progress', step=2)           # the first step (setting up) is long
    t0 = time.monotonic()
    client.close()                             # GIMP's Cancel kills the plug-in
    while True:
        again = Client(server.sock)
        if not again.hello['busy']:
            break
        again.close()
        assert time.monotonic() - t0 < 1.5, 'still busy 1.5 s after the client left'
        time.sleep(0.05)
    assert time.monotonic() - t0 < 1.5
    assert again.hello['pid'] == server.pid and server.poll() is None
    assert not (folder / 'result.rgba').exists() and not list(folder.glob('*.part'))
    again.send({'job': quick_job(private_dir, 'next')})
    assert again.events()[-1]['event'] == 'done'
    again.close()
    assert 'cancelled' in log_of(server)


def test_a_client_gone_in_a_long_step_ends_the_server_within_a_second(server, private_dir):
    """A step cannot be interrupted: a cancelled job still in it after a second ends the
    process (its socket removed), the next run starts a worker; it is never left stuck."""
    client = Client(server.sock)
    client.send({'job': write_job(job_dir(private_dir, 'long'), scene(128, 96), [stripes()],
                                  **LONG)})
    client.until('progress')                # step 0: the first step (long) begins
    t0 = time.monotonic()
    client.close()
    while time.monotonic() - t0 < 1.6:
        if server.poll() is not None:
            assert server.returncode == protocol.EXIT_CANCELLED
            assert not os.path.exists(server.sock)
            assert 'did not stop within 1 s' in log_of(server)
            return
        try:
            again = Client(server.sock)
        except OSError:
            again = None                          # the socket is going: it ends
        if again is not None:
            again.close()
            # no hello: ending (it closes what it accepts then); busy:false: the step
            # was short after all
            if again.hello is not None and not again.hello['busy']:
                return
        time.sleep(0.05)
    pytest.fail('1.6 s after the client left, the server neither served nor ended: '
                + log_of(server))


def test_a_second_client_is_told_busy_while_a_job_runs(server, private_dir):
    client = Client(server.sock)
    client.send({'job': write_job(job_dir(private_dir, 'long'), scene(64, 64), [stripes()],
                                  **LONG)})
    client.until('progress')
    other = Client(server.sock)
    assert other.hello['busy'] is True and other.hello['key'] == KEY
    assert other.read() is None                # and it closed
    other.close()
    client.close()


def test_hello_names_protocol_version_key_and_pid(server):
    from nst_core import __version__
    client = Client(server.sock)
    assert client.hello == {'event': 'hello', 'protocol': protocol.PROTOCOL_VERSION,
                            'version': __version__, 'key': KEY, 'pid': server.pid,
                            'busy': False}
    client.send({'bye': True})
    assert client.read() is None
    client.close()


@pytest.mark.parametrize('line', [b'not json\n', b'{"job": 3}\n', b'{"job": "relative.json"}\n',
                                  b'[1, 2]\n'])
def test_a_bad_request_is_bad_job_and_the_server_stays(server, private_dir, line):
    client = Client(server.sock)
    client.sock.sendall(line)
    events = client.events()
    client.close()
    assert [e['kind'] for e in events] == ['bad_job'], events
    assert run_job(server.sock, quick_job(private_dir, 'after'))[-1]['event'] == 'done'


def test_a_bad_job_file_is_bad_job_and_the_server_stays(server, private_dir):
    bad = os.path.join(private_dir, 'job.json')
    with open(bad, 'w') as f:
        f.write('{"protocol": 7}')
    events = run_job(server.sock, bad)
    assert events[-1]['event'] == 'error' and events[-1]['kind'] == 'bad_job'
    assert 'protocol version' in events[-1]['message']
    missing = run_job(server.sock, os.path.join(private_dir, 'nothing.json'))
    assert missing[-1]['kind'] == 'bad_job'
    assert run_job(server.sock, quick_job(private_dir, 'after'))[-1]['event'] == 'done'
    assert server.poll() is None


def test_bad_options_are_bad_input_as_in_the_worker(server, private_dir):
    events = run_job(server.sock, quick_job(private_dir, 'j', strength=-1))
    assert events[-1]['kind'] == 'bad_input' and 'strength' in events[-1]['message']
    events = run_job(server.sock, quick_job(private_dir, 'k', preview_seconds='often'))
    assert events[-1]['kind'] == 'bad_input' and 'preview_seconds' in events[-1]['message']


def test_masks_run_as_in_the_worker_and_a_bad_one_is_bad_input(server, private_dir):
    """The warm worker runs jobs through the one-shot worker's code: masks arrive, a black
    one is refused before any work, and the server stays for the next job."""
    from test_worker import half
    folder = job_dir(private_dir, 'm')
    job = write_job(folder, scene(48, 36), [stripes(32, 32), scene(30, 30, seed=5)],
                    style_masks=[half(48, 36), None], painting_masks=[None, half(30, 30)],
                    size=48, preset='draft', iterations=3)
    events = run_job(server.sock, job)
    assert events[-1]['event'] == 'done', events
    assert (folder / 'result.rgba').stat().st_size == 48 * 36 * 4
    folder = job_dir(private_dir, 'black')
    job = write_job(folder, scene(48, 36), [stripes(32, 32)], style_masks=[half(48, 36, 0)],
                    size=48, preset='draft', iterations=3)
    events = run_job(server.sock, job)
    assert events[-1]['kind'] == 'bad_input' and 'black everywhere' in events[-1]['message']
    assert not (folder / 'result.rgba').exists()
    assert server.poll() is None


def test_previews_over_the_connection(server, private_dir):
    folder = job_dir(private_dir, 'p')
    job = write_job(folder, scene(96, 64), [stripes()], size=96, preset='draft', iterations=4,
                    preview_seconds=0.01, preview_side=40)
    events = run_job(server.sock, job)
    previews = [e for e in events if e['event'] == 'preview']
    assert events[-1]['event'] == 'done' and previews
    assert (previews[-1]['width'], previews[-1]['height']) == (40, 27)
    assert (folder / 'preview.rgba').stat().st_size == 40 * 27 * 4


def test_stray_prints_go_to_the_log(private_dir):
    """Libraries that print must not reach a client: stdout goes to the log."""
    patch = ("import sys, functools, nst_core; S = sys.modules['nst_core.api']\n"
             "orig = S.stylize_with\n"
             "def noisy(*a, **k):\n    print('noise from a library'); return orig(*a, **k)\n"
             "S.stylize_with = functools.wraps(orig)(noisy)")
    proc = start_server(private_dir, patch=patch, stdout=subprocess.PIPE)
    try:
        wait_listening(proc)
        events = run_job(proc.sock, quick_job(private_dir, 'j'))
        assert events[-1]['event'] == 'done'            # every line parsed as an event
        assert 'noise from a library' in log_of(proc)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert out == b''


# --- ending ---------------------------------------------------------------------------------

def test_idle_server_exits_and_removes_its_socket(private_dir):
    proc = wait_listening(start_server(private_dir, keep_alive=2))
    t0 = time.monotonic()
    wait_gone(proc, 8)
    assert 1.5 < time.monotonic() - t0
    assert proc.returncode == 0
    assert not os.path.exists(proc.sock)
    assert 'idle' in log_of(proc)


def test_idle_time_counts_from_the_last_job(private_dir):
    proc = wait_listening(start_server(private_dir, keep_alive=2))
    for i in range(3):                  # 3 x 1 s apart: never 2 s idle
        time.sleep(1)
        client = Client(proc.sock)
        client.send({'bye': True})
        client.events()
        client.close()
    assert proc.poll() is None
    wait_gone(proc, 8)


@pytest.mark.parametrize('how', ['removed', 'replaced'])
def test_socket_file_removed_or_replaced_ends_the_server(server, how):
    os.unlink(server.sock)
    if how == 'replaced':
        other = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        other.bind(server.sock)
    t0 = time.monotonic()
    wait_gone(server, 5)
    assert time.monotonic() - t0 < 2.5
    assert os.path.exists(server.sock) == (how == 'replaced')    # not its own: left alone
    if how == 'replaced':
        other.close()


def say_owner(proc, owner):
    """A request naming the GIMP it comes from, as the plug-in's (here a bye: no job)."""
    client = Client(proc.sock)
    client.send({'bye': True, 'owner': owner})
    client.events()
    client.close()


def sleeper():
    return subprocess.Popen(['sleep', '300'])


def test_the_server_ends_once_every_gimp_it_served_has_ended(server):
    gimp_a, gimp_b = sleeper(), sleeper()            # two GIMPs, as far as it can tell
    try:
        say_owner(server, protocol.process_owner(gimp_a.pid))
        say_owner(server, protocol.process_owner(gimp_b.pid))
        gimp_a.kill()
        gimp_a.wait()
        time.sleep(2)                                # four of its checks
        assert server.poll() is None, 'it ended while another GIMP still used it'
        gimp_b.kill()
        gimp_b.wait()
        t0 = time.monotonic()
        wait_gone(server, 5)
        assert time.monotonic() - t0 < 2
        assert server.returncode == 0 and not os.path.exists(server.sock)
        assert 'the GIMP it served has ended (pid %d)' % gimp_b.pid in log_of(server)
    finally:
        for p in (gimp_a, gimp_b):
            p.kill()
            p.wait()


def test_an_owner_that_is_not_that_process_any_more_is_not_waited_for(server):
    """A pid with another start time is a later process that got the pid: the GIMP that sent
    the request has ended. Requests without an owner (the CLI, older plug-ins) leave the
    server to its keep-alive time."""
    me = protocol.process_owner(os.getpid())
    if me['start'] is None:
        pytest.skip('no /proc here: processes are told apart by pid alone')
    say_owner(server, None)
    say_owner(server, {'pid': os.getpid(), 'start': me['start'] + 1})
    time.sleep(1.5)
    assert server.poll() is None
    say_owner(server, me)
    time.sleep(1.5)
    assert server.poll() is None, 'it ended while the GIMP it serves still runs'


def tmp_folders(folder):
    return sorted(n for n in os.listdir(folder) if n.startswith('tmp-'))


def test_its_temporary_files_are_its_own_and_go_with_it(private_dir):
    """torch 2.6 writes a module into a temporary folder at import and removes it only at a
    normal interpreter exit, which the server never has: its TMPDIR is a folder of its own
    beside the socket, removed when it ends; a killed server's is removed by the next one."""
    stale = os.path.join(private_dir, 'tmp-999999999-x')     # no such pid
    os.mkdir(stale)
    proc = wait_listening(start_server(private_dir, patch=(
        'import os, sys, tempfile\n'
        'def touch():\n'
        '    with open(os.path.join(tempfile.gettempdir(), "torch-was-here.py"), "w") as f:\n'
        '        f.write(os.environ["TMPDIR"])\n'
        'import threading; threading.Timer(1.0, touch).start()')))
    time.sleep(1.5)
    mine = tmp_folders(private_dir)
    assert mine and all(n.startswith('tmp-%d-' % proc.pid) for n in mine), mine
    assert os.path.exists(os.path.join(private_dir, mine[0], 'torch-was-here.py'))
    proc.send_signal(signal.SIGTERM)
    wait_gone(proc, 5)
    assert tmp_folders(private_dir) == []
    # each server below logs anew: wait_listening reads ": serving" from the log
    os.remove(proc.log)
    killed = wait_listening(start_server(private_dir))
    left = tmp_folders(private_dir)
    killed.kill()
    killed.wait()
    assert len(left) == 1 and os.path.isdir(os.path.join(private_dir, left[0]))
    os.remove(killed.log)
    after = wait_listening(start_server(private_dir))
    try:
        assert [n for n in tmp_folders(private_dir) if n.startswith('tmp-%d-' % killed.pid)] \
            == []
    finally:
        after.terminate()
        after.wait(10)


def test_sigterm_ends_the_server_and_removes_the_socket(server):
    server.send_signal(signal.SIGTERM)
    wait_gone(server, 5)
    assert server.returncode == 0 and not os.path.exists(server.sock)


def test_sigterm_during_a_job_cancels_it_and_ends_the_server(server, private_dir):
    folder = job_dir(private_dir, 'long')
    client = Client(server.sock)
    client.send({'job': write_job(folder, scene(128, 96), [stripes()], **LONG)})
    client.until('progress', step=2)
    t0 = time.monotonic()
    server.send_signal(signal.SIGTERM)
    rest = client.events()
    wait_gone(server, 5)
    assert time.monotonic() - t0 < 1.5
    assert rest[-1]['event'] == 'error' and rest[-1]['kind'] == 'cancelled'
    assert not os.path.exists(server.sock) and not (folder / 'result.rgba').exists()
    client.close()


# --- starting -------------------------------------------------------------------------------

def test_a_folder_others_can_enter_is_refused(private_dir):
    os.chmod(private_dir, 0o755)
    proc = start_server(private_dir)
    assert proc.wait(timeout=60) == 2
    lines = log_of(proc).strip().splitlines()
    assert len(lines) == 1 and 'must be private (0700)' in lines[0], lines
    assert not os.path.exists(proc.sock)


def test_a_symlinked_folder_is_refused(private_dir):
    real = os.path.join(private_dir, 'real')
    os.mkdir(real, 0o700)
    link = os.path.join(private_dir, 'link')
    os.symlink(real, link)
    proc = start_server(private_dir, sock=os.path.join(link, 'w.sock'))
    assert proc.wait(timeout=60) == 2
    assert 'symbolic link' in log_of(proc)


def test_a_dead_socket_file_is_replaced(private_dir):
    path = os.path.join(private_dir, 'worker-%s.sock' % KEY)
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(path)
    dead.close()                          # the file stays; nobody listens
    proc = wait_listening(start_server(private_dir))
    try:
        client = Client(path)
        assert client.hello['pid'] == proc.pid
        client.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_regular_file_at_the_path_is_left_alone(private_dir):
    path = os.path.join(private_dir, 'worker-%s.sock' % KEY)
    with open(path, 'w') as f:
        f.write('precious')
    proc = start_server(private_dir)
    assert proc.wait(timeout=60) == 2
    assert 'not a socket' in log_of(proc)
    with open(path) as f:
        assert f.read() == 'precious'


def test_a_live_worker_at_the_path_is_left_alone(server, private_dir):
    second = start_server(private_dir)
    assert second.wait(timeout=60) == 2
    assert 'another worker serves' in log_of(second)
    assert server.poll() is None
    Client(server.sock).close()           # still serving


@pytest.mark.parametrize('value', ['0', '-1', 'never'])
def test_keep_alive_must_be_positive(private_dir, value):
    proc = start_server(private_dir, keep_alive=value)
    assert proc.wait(timeout=60) == 2


# --- the VGG kept between jobs --------------------------------------------------------------

def test_features_are_loaded_once_per_process(monkeypatch):
    import torch
    from nst_core import features
    from nst_core.loaded import LoadedModels
    from nst_core.models.vgg import tiny_random
    loads = []

    def counting_load(model, layers, pooling, cache_dir, log):     # stands for the disk
        loads.append(model)
        log('weights: vgg16 (cached)')
        return tiny_random('vgg16', layers, pooling=pooling)
    monkeypatch.setattr(features, '_load_features', counting_load)
    models = LoadedModels()
    layers, said = ['relu1_1', 'relu4_2'], []
    first = features.load_features('vgg16-caffe', layers, log=said.append, models=models)
    first.to(memory_format=torch.channels_last)           # as a bf16 job leaves it
    second = features.load_features('vgg16-caffe', layers, log=said.append, models=models)
    assert second is first and loads == ['vgg16-caffe']
    assert said == ['weights: vgg16 (cached)'] * 2        # each job's log says which weights
    assert all(not p.requires_grad for p in second.parameters())
    assert all(p.is_contiguous() and p.device.type == 'cpu' for p in second.parameters())
    features.load_features('vgg16-caffe', ['relu1_1'], log=said.append, models=models)
    features.load_features('vgg16-caffe', layers, pooling='avg', log=said.append, models=models)
    assert len(loads) == 3 and len(models) == 3


def test_the_server_keeps_its_networks_in_one_cache_of_its_own(private_dir):
    from nst_core import server
    from nst_core.loaded import PROCESS, LoadedModels
    s = server.Server(None, os.path.join(private_dir, 'sock'), {}, 'key', 60)
    assert isinstance(s.models, LoadedModels) and s.models is not PROCESS


def test_the_second_quality_job_loads_no_network(private_dir):
    """In a real server: the VGG loaded by the first job serves the second."""
    patch = ("import sys\nfrom nst_core import features\norig = features._load_features\n"
             "def counted(*a):\n    sys.stderr.write('LOADING VGG\\n'); return orig(*a)\n"
             "features._load_features = counted")
    proc = wait_listening(start_server(private_dir, patch=patch))
    try:
        for name in ('a', 'b'):
            assert run_job(proc.sock, quick_job(private_dir, name))[-1]['event'] == 'done'
        assert log_of(proc).count('LOADING VGG') == 1, log_of(proc)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_tiny_features_are_kept_too():
    from nst_core.features import load_features
    assert load_features('tiny', ['relu2_1']) is load_features('tiny', ['relu2_1'])


def test_a_user_file_rewritten_is_read_again(tmp_path):
    from nst_core import features
    path = tmp_path / 'mine.pth'
    path.write_bytes(b'x')
    key = features._features_key(str(path), ['relu1_1'], 'max', None)
    os.utime(path, ns=(0, 10 ** 9))
    assert features._features_key(str(path), ['relu1_1'], 'max', None) != key
    assert features._features_key(str(tmp_path / 'missing.pth'), ['relu1_1'], 'max', None) \
        is None
