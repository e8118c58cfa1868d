"""The plug-in's worker client (nst_client.py, beside the plug-in once installed) without GIMP: real workers
(one-shot and warm, model 'tiny'), real sockets, real processes."""
import ast
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest

from conftest import ROOT, scene, stripes

sys.path.insert(0, str(ROOT / 'plugin' / 'neural_style'))
import nst_client  # noqa: E402

CLIENT = ROOT / 'nst_client.py'


class Log(nst_client.Hooks):
    def __init__(self):
        self.lines = []

    def log(self, message):
        self.lines.append(message)

    def started(self):
        return [int(m.split()[-1]) for m in self.lines if m.startswith('warm worker: started')]


@pytest.fixture
def place(monkeypatch):
    """A private runtime folder (short: AF_UNIX paths are limited), a worker interpreter that
    finds this checkout's nst_core (the client drops PYTHONPATH, as GIMP's must not leak), and
    every warm worker started here killed afterwards."""
    root = tempfile.mkdtemp(prefix='nsc-', dir='/tmp')
    os.chmod(root, 0o700)
    monkeypatch.setenv('XDG_RUNTIME_DIR', root)
    python = os.path.join(root, 'python')
    with open(python, 'w') as f:
        f.write('#!/bin/sh\nPYTHONPATH=%s exec %s "$@"\n' % (ROOT, sys.executable))
    os.chmod(python, 0o755)
    pids = []
    yield root, python, pids
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    shutil.rmtree(root, ignore_errors=True)


def make_config(place, keep_alive=600):
    root, python, _ = place
    path = os.path.join(root, 'neural_style.json')
    config = {'version': 1, 'python': python, 'stall_seconds': 600, 'time_limit_seconds': 0,
              'keep_alive_seconds': keep_alive}
    with open(path, 'w') as f:
        json.dump(config, f)
    return dict(config, _path=path)


def run(config, log, place, *, iterations=2, method='quality', handler=None, size=48):
    content, style = scene(60, 40).convert('RGBA'), stripes(40, 40).convert('RGBA')
    with nst_client.JobFolder(config, log) as folder:
        c = folder.buffer('content.rgba', 60, 40, content.tobytes())
        s = folder.buffer('style0.rgba', 40, 40, style.tobytes())
        job = folder.write_job(c, [s], {'model': 'tiny', 'method': method, 'size': size,
                                        'preset': 'draft', 'iterations': iterations})
        try:
            nst_client.run_job(config, job, handler or nst_client.Handler(), hooks=log)
        finally:
            place[2].extend(log.started())
        data = folder.read('result.rgba', 60, 40)
    assert np.frombuffer(data, np.uint8).reshape(40, 60, 4)[..., 3].min() == 255
    return pid_of(log)


def pid_of(log):
    lines = [m for m in log.lines if m.startswith('worker-pid ')]
    return int(lines[-1].split()[1]), lines[-1].split()[2]


def alive(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError:
        return False


def test_client_needs_only_the_standard_library():
    tree = ast.parse(CLIENT.read_text())
    names = {a.name.split('.')[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
             for a in n.names}
    names |= {n.module.split('.')[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert names <= set(sys.stdlib_module_names) | {'nst_protocol'}, names


def test_keep_alive_0_runs_a_worker_per_job(place):
    config = make_config(place, keep_alive=0)
    first, second = run(config, Log(), place), run(config, Log(), place)
    assert first[1] == second[1] == 'one-shot'
    assert first[0] != second[0] and not alive(first[0])


def test_the_second_job_reuses_the_warm_worker(place):
    config = make_config(place)
    first, second = run(config, Log(), place), run(config, Log(), place)
    assert first[1] == second[1] == 'warm'
    assert first[0] == second[0] and alive(first[0])


class CancelAt(nst_client.Handler):
    def __init__(self, n):
        self.n, self.seen = n, 0

    def progress(self, event):
        self.seen += 1
        return self.seen >= self.n


def test_a_cancelled_job_leaves_the_warm_worker_alive_for_the_next(place):
    config = make_config(place)
    log = Log()
    with pytest.raises(nst_client.Cancelled):
        run(config, log, place, iterations=100000, size=64, handler=CancelAt(5))
    pid = pid_of(log)[0]
    t0 = time.monotonic()
    second = run(config, Log(), place)
    assert second == (pid, 'warm')
    assert time.monotonic() - t0 < 20
    assert alive(pid)


def test_a_killed_warm_worker_is_replaced(place):
    config = make_config(place)
    pid = run(config, Log(), place)[0]
    os.kill(pid, signal.SIGKILL)
    while alive(pid):
        time.sleep(0.05)
    log = Log()
    new = run(config, log, place)
    assert new[1] == 'warm' and new[0] != pid
    assert log.started() == [new[0]]


def test_a_stale_socket_file_is_replaced(place):
    config = make_config(place)
    path = nst_client.WarmWorker(config).socket_path
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(path)
    dead.close()                       # the file stays; nobody listens
    log = Log()
    assert run(config, log, place)[1] == 'warm'
    assert len(log.started()) == 1


def test_a_worker_of_another_install_is_not_asked(place):
    config = make_config(place)
    warm = nst_client.WarmWorker(config)
    other = subprocess.Popen([place[1], '-m', 'nst_core', 'serve', '--socket', warm.socket_path,
                              '--key', 'someone-else', '--keep-alive', '60'],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    place[2].append(other.pid)
    deadline = time.monotonic() + 60
    while not os.path.exists(warm.socket_path) and time.monotonic() < deadline:
        time.sleep(0.05)
    log = Log()
    pid, kind = run(config, log, place)
    assert kind == 'warm' and pid != other.pid
    assert any(m.startswith('warm worker: replacing pid %d' % other.pid) for m in log.lines)
    other.wait(10)                     # its socket file was removed: it exits by itself


def test_a_busy_warm_worker_sends_the_second_job_to_a_worker_of_its_own(place):
    config = make_config(place)
    first = run(config, Log(), place)[0]
    conn = nst_client.WarmWorker(config).connect()
    content = scene(60, 40).convert('RGBA')
    with nst_client.JobFolder(config) as folder:
        c = folder.buffer('content.rgba', 60, 40, content.tobytes())
        s = folder.buffer('style0.rgba', 60, 40, content.tobytes())
        conn.send_job(folder.write_job(c, [s], {'model': 'tiny', 'size': 64,
                                                'iterations': 100000}))
        assert conn.lines.get(timeout=60) is not None          # it has started
        second = run(config, Log(), place)
        conn.stop()
    assert second[1] == 'one-shot' and second[0] != first
    assert alive(first)


def test_a_failed_job_says_why_and_the_worker_stays(place):
    config = make_config(place)
    pid = run(config, Log(), place)[0]
    with nst_client.JobFolder(config) as folder:
        c = folder.buffer('content.rgba', 60, 40, b'short')
        s = folder.buffer('style0.rgba', 1, 1, b'\0' * 4)
        job = folder.write_job(c, [s], {'model': 'tiny'})
        with pytest.raises(nst_client.WorkerFailed) as e:
            nst_client.run_job(config, job)
    assert e.value.error['kind'] == 'bad_input' and 'holds 5 bytes' in e.value.error['message']
    assert run(config, Log(), place)[0] == pid


def test_a_worker_folder_others_can_enter_is_refused(place, monkeypatch):
    folder = os.path.join(place[0], 'neural-style')
    os.mkdir(folder, 0o755)
    os.chmod(folder, 0o755)
    with pytest.raises(nst_client.Failure) as found:
        nst_client.state_dir()
    assert found.value.kind == 'worker_folder' and found.value.fields == {'path': folder}


class Silent:
    """A channel whose worker says nothing more: what follow() makes of the time limits."""
    kind, pid = 'silent', 0

    def __init__(self, log_path):
        self.log_path, self.lines, self.stuck = log_path, queue.Queue(), False

    def stop(self, grace=0, stuck=False):
        self.stuck = self.stuck or stuck


@pytest.mark.parametrize('limit', ['stalled', 'time_limit'])
def test_a_time_limit_stops_the_worker_with_the_fields_to_word_it(tmp_path, limit):
    log = tmp_path / 'worker.log'
    log.write_text('loading\nstill loading\n')
    config = {'stall_seconds': 0.2 if limit == 'stalled' else 0,
              'time_limit_seconds': 0.2 if limit == 'time_limit' else 0,
              '_path': '/home/me/neural_style.json'}
    channel = Silent(str(log))
    with pytest.raises(nst_client.Failure) as found:
        nst_client.follow(channel, config)
    assert found.value.kind == limit and channel.stuck      # stopped as a stuck worker
    assert found.value.fields == {'seconds': 0.2, 'config': '/home/me/neural_style.json',
                                  'log_tail': 'loading\nstill loading'}


def test_an_interpreter_that_will_not_start_is_a_failure_with_its_fields(place):
    config = dict(make_config(place, keep_alive=0), python=os.path.join(place[0], 'nope'))
    with nst_client.JobFolder(config) as folder:
        with pytest.raises(nst_client.Failure) as found:
            nst_client.run_job(config, os.path.join(folder.path, 'job.json'))
    assert found.value.kind == 'interpreter'
    assert found.value.fields == {'python': config['python'], 'config': config['_path'],
                                  'reason': 'No such file or directory'}


def test_a_missing_or_short_buffer_is_a_failure_with_its_fields(place):
    with nst_client.JobFolder(make_config(place)) as folder:
        with pytest.raises(nst_client.Failure) as found:
            folder.read('result.rgba', 2, 3)
        assert found.value.kind == 'buffer_missing'
        assert found.value.fields['name'] == 'result.rgba' and found.value.fields['reason']
        folder.buffer('result.rgba', 2, 3, b'\0' * 5)
        with pytest.raises(nst_client.Failure) as found:
            folder.read('result.rgba', 2, 3)
        assert (found.value.kind, found.value.fields) == ('buffer_size', {
            'name': 'result.rgba', 'size': 5, 'expected': 24, 'width': 2, 'height': 3})


def test_the_warm_worker_exits_when_idle(place):
    config = make_config(place, keep_alive=1)
    pid = run(config, Log(), place)[0]
    path = nst_client.WarmWorker(config).socket_path
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(pid) and not os.path.exists(path)


def test_a_new_config_means_a_new_worker(place):
    config = make_config(place)
    pid = run(config, Log(), place)[0]
    time.sleep(0.01)
    config = make_config(place)        # install.py wrote it again: another install
    assert run(config, Log(), place)[0] != pid


class Previews(nst_client.Handler):
    def __init__(self, folder):
        self.folder, self.pictures = folder, []

    def preview(self, event):
        self.pictures.append(self.folder.read(event['path'], event['width'], event['height']))


def test_previews_reach_the_handler_as_pictures_in_the_job_folder(place):
    config = make_config(place)
    content, style = scene(60, 40).convert('RGBA'), stripes(40, 40).convert('RGBA')
    with nst_client.JobFolder(config) as folder:
        job = folder.write_job(folder.buffer('content.rgba', 60, 40, content.tobytes()),
                               [folder.buffer('style0.rgba', 40, 40, style.tobytes())],
                               {'model': 'tiny', 'size': 48, 'preset': 'draft',
                                'preview_seconds': 0.01, 'preview_side': 32})
        handler, log = Previews(folder), Log()
        try:
            nst_client.run_job(config, job, handler, hooks=log)
        finally:
            place[2].extend(log.started())
    assert len(handler.pictures) >= 2
    assert len(set(handler.pictures)) >= 2, 'the picture should change as it forms'
