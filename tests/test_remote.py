"""The worker over SSH (docs/remote.md) through a real OpenSSH server on 127.0.0.1 (tests/sshd.py):
the plug-in's client (nst_client.Remote) and the remote end (`python -m nst_core remote`),
tiny networks, real processes. The "remote" machine is this one: its python is a wrapper
with a runtime folder of its own, so its warm worker is the test's to find and end."""
import json
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, scene, stripes
import sshd
import nst_client
import nst_protocol as protocol

pytestmark = [pytest.mark.ssh,
              pytest.mark.skipif(sshd.MISSING is not None, reason=sshd.MISSING or '')]

sys.path.insert(0, str(ROOT / 'plugin' / 'neural_style'))
import messages  # noqa: E402


class Log(nst_client.Hooks):
    def __init__(self):
        self.lines = []

    def log(self, message):
        self.lines.append(message)


def wrapper(path, runtime, python=sys.executable):
    """An interpreter for the remote side whose warm worker lives in `runtime`."""
    path.write_text('#!/bin/sh\nXDG_RUNTIME_DIR=%s exec %s "$@"\n' % (runtime, python))
    path.chmod(0o755)
    return path


def workers_in(runtime):
    """The pids of the warm workers (serve) whose socket is in `runtime`."""
    found = []
    for name in os.listdir('/proc'):
        if name.isdigit():
            try:
                with open('/proc/%s/cmdline' % name, 'rb') as f:
                    args = f.read().split(b'\0')
            except OSError:
                continue
            if b'serve' in args and any(a.startswith(str(runtime).encode()) for a in args):
                found.append(int(name))
    return found


@pytest.fixture
def remote(tmp_path_factory):
    """(sshd, its runtime folder, the config that reaches it); the warm workers it started
    are ended afterwards."""
    root = Path(tmp_path_factory.mktemp('remote'))
    runtime = root / 'run'
    runtime.mkdir(mode=0o700)
    server = sshd.SSHServer(root / 'sshd').start()
    python = wrapper(root / 'python', runtime)
    config = {'version': 1, 'python': sys.executable, 'remote': server.url(str(python)),
              'ssh_command': server.ssh_command, 'keep_alive_seconds': 120,
              'stall_seconds': 600, 'time_limit_seconds': 0, '_path': str(root / 'ns.json')}
    yield server, runtime, config
    server.stop()
    for pid in workers_in(runtime):
        os.kill(pid, signal.SIGKILL)


OPTIONS = {'model': 'tiny', 'method': 'quality', 'size': 48, 'preset': 'draft',
           'iterations': 3, 'seed': 7}


def job(config, options=OPTIONS, handler=None, log=None):
    """Run a job on the config's worker; (result bytes, log)."""
    log = log or Log()
    content, style = scene(60, 40).convert('RGBA'), stripes(40, 40).convert('RGBA')
    with nst_client.JobFolder(config, log) as folder:
        c = folder.buffer('content.rgba', 60, 40, content.tobytes())
        s = folder.buffer('style0.rgba', 40, 40, style.tobytes())
        path = folder.write_job(c, [s], dict(options))
        nst_client.run_job(config, path, handler or nst_client.Handler(), hooks=log)
        return folder.read('result.rgba', 60, 40), log


def test_a_job_over_ssh_gives_the_local_workers_picture(remote, tmp_path):
    server, runtime, config = remote
    local = dict(config, remote=None, keep_alive_seconds=0)
    there, log = job(config)
    here, _ = job(local)
    assert there == here
    assert any(line.startswith('worker-pid') and line.endswith('remote') for line in log.lines)
    assert not [p for p in tmp_path.parent.iterdir() if p.name.startswith('neural-style-')]


def test_the_second_run_reaches_the_same_warm_worker(remote):
    server, runtime, config = remote
    job(config)
    first = workers_in(runtime)
    t0 = time.monotonic()
    job(config)
    assert len(first) == 1 and workers_in(runtime) == first
    assert time.monotonic() - t0 < 20


class CancelAt(nst_client.Handler):
    def __init__(self, n):
        self.n, self.seen, self.when = n, 0, None

    def progress(self, event):
        self.seen += 1
        if self.seen >= self.n:
            self.when = time.monotonic()
        return self.seen >= self.n


class Seen:
    """When the box's warm worker first logged a cancelled job, watched from now on: the
    client's own teardown (ssh's exit, the job folder) is not the box's cancel."""

    def __init__(self, runtime):
        import threading
        self.when = None
        threading.Thread(target=self._watch, args=(runtime,), daemon=True).start()

    def _watch(self, runtime):
        deadline = time.monotonic() + 60
        while self.when is None and time.monotonic() < deadline:
            if ': cancelled in' in worker_log(runtime):
                self.when = time.monotonic()
            time.sleep(0.02)

    def within(self, since, seconds):
        wait_for(lambda: self.when is not None, since + seconds + 2 - time.monotonic())
        return self.when is not None and self.when - since < seconds


def worker_log(runtime):
    logs = list((runtime / 'neural-style').glob('worker-*.log'))
    return logs[0].read_text() if logs else ''


def wait_for(condition, seconds=5.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_cancel_ends_the_remote_job_within_a_second_and_the_warm_worker_stays(remote):
    server, runtime, config = remote
    long, cancel = dict(OPTIONS, iterations=2000), CancelAt(2)
    seen = Seen(runtime)
    with pytest.raises(nst_client.Cancelled):
        job(config, long, cancel)
    assert seen.within(cancel.when, 1.5), worker_log(runtime)
    assert len(workers_in(runtime)) == 1
    job(config)                                 # and it serves the next one


CLIENT = """
import sys, nst_client, json
config = json.loads(sys.argv[1])
with nst_client.JobFolder(config) as folder:
    c = folder.buffer('content.rgba', 8, 8, bytes(256))
    s = folder.buffer('style0.rgba', 8, 8, bytes(256))
    path = folder.write_job(c, [s], json.loads(sys.argv[2]))

    class Said(nst_client.Handler):
        def progress(self, event):
            print('progress', flush=True)
    nst_client.run_job(config, path, Said())
"""


def test_a_killed_client_ends_the_remote_job_within_a_second(remote):
    """GIMP's Cancel SIGKILLs the plug-in's process group, ssh with it: the remote end sees
    end-of-file and drops the job; the warm worker stays."""
    import subprocess
    server, runtime, config = remote
    job(config)                                 # the warm worker is up
    client = subprocess.Popen([sys.executable, '-c', CLIENT, json.dumps(config),
                               json.dumps(dict(OPTIONS, iterations=2000))],
                              start_new_session=True, cwd=str(ROOT),
                              stdout=subprocess.PIPE)
    seen = Seen(runtime)
    try:
        assert client.stdout.readline() == b'progress\n'      # the job runs there
    finally:
        t0 = time.monotonic()
        os.killpg(client.pid, signal.SIGKILL)
        client.wait()
    assert seen.within(t0, 1.5), worker_log(runtime)
    assert len(workers_in(runtime)) == 1


class KillSessionsAt(nst_client.Handler):
    def __init__(self, server, n):
        self.server, self.n, self.seen = server, n, 0

    def progress(self, event):
        self.seen += 1
        if self.seen == self.n:
            self.server.kill_sessions()
        return False


def test_a_dropped_connection_names_the_host_and_ends_the_remote_job(remote):
    server, runtime, config = remote
    long = dict(OPTIONS, iterations=2000)
    with pytest.raises(nst_client.Failure) as caught:
        job(config, long, KillSessionsAt(server, 2))
    assert caught.value.kind == 'remote_lost'
    assert '127.0.0.1:%d' % server.port in messages.said(caught.value)
    assert wait_for(lambda: 'cancelled' in worker_log(runtime), 5.0), worker_log(runtime)


def refused(config, seconds=10.0):
    t0 = time.monotonic()
    with pytest.raises(nst_client.Failure) as caught:
        job(config)
    assert time.monotonic() - t0 < seconds
    return caught.value, messages.said(caught.value)


def test_no_key_login_says_how_to_set_it_up_within_seconds(remote):
    server, runtime, config = remote
    (server.folder / 'authorized_keys').write_text('')
    failure, text = refused(config)
    assert failure.kind == 'ssh' and 'Permission denied' in text and 'ssh-copy-id' in text


def test_an_unknown_host_key_is_refused_in_ssh_words(remote):
    server, runtime, config = remote
    server.known_hosts.write_text('')
    failure, text = refused(config)
    assert failure.kind == 'ssh' and 'Host key verification failed' in text


def test_a_changed_host_key_is_refused_in_ssh_words(remote, tmp_path):
    server, runtime, config = remote
    sshd.keygen(tmp_path / 'other')
    server.trust(tmp_path / 'other')
    failure, text = refused(config)
    assert failure.kind == 'ssh' and 'IDENTIFICATION HAS CHANGED' in text
    assert 'ssh-keygen -R' in text
    assert not workers_in(runtime)


def test_a_remote_without_the_engine_names_the_command_to_run_there(remote, tmp_path):
    server, runtime, config = remote
    bare = wrapper(tmp_path / 'bare python', runtime, '/usr/bin/python3 -I')
    failure, text = refused(dict(config, remote=server.url(str(bare))))
    assert failure.kind == 'remote_engine'
    assert 'python3 install.py --worker-only' in text and 'No module named nst_core' in text


def test_a_remote_engine_of_another_version_is_refused_with_the_command(remote, tmp_path):
    server, runtime, config = remote
    old = tmp_path / 'old'
    old.write_text('#!/bin/sh\necho \'%s\'\ncat >/dev/null\n' % protocol.encode_event(
        'hello', protocol=protocol.PROTOCOL_VERSION, version='0.0.1', host='old'))
    old.chmod(0o755)
    failure, text = refused(dict(config, remote=server.url(str(old))))
    assert failure.kind == 'remote_version' and failure.fields['found'] == '0.0.1'
    assert '0.0.1' in text and 'python3 install.py --worker-only' in text


def test_a_path_with_spaces_quotes_and_semicolons_reaches_the_right_python(remote, tmp_path):
    """The remote command is quoted for the remote's shell: nothing in the path runs."""
    server, runtime, config = remote
    odd = tmp_path / "it's a; touch pwned $(id) python"
    wrapper(odd, runtime)
    result, _ = job(dict(config, remote=server.url(str(odd).replace(' ', '%20'))))
    assert len(result) == 60 * 40 * 4
    assert not list(Path.home().glob('pwned*')) and not list(tmp_path.glob('pwned*'))


@pytest.mark.parametrize('host', ['127.0.0.1;touch /tmp/nst-pwned', '-oProxyCommand=touch '
                                  '/tmp/nst-pwned', 'bad host'])
def test_a_host_with_shell_characters_or_an_option_is_only_ssh_s_argument(remote, host):
    server, runtime, config = remote
    url = 'ssh://%s:%d/usr/bin/python3' % (host.replace(' ', '%20'), server.port)
    try:
        os.unlink('/tmp/nst-pwned')
    except FileNotFoundError:
        pass
    with pytest.raises(nst_client.Failure) as caught:
        job(dict(config, remote=url))
    assert caught.value.kind in ('ssh', 'remote_url')
    assert messages.said(caught.value)
    assert not os.path.exists('/tmp/nst-pwned')


def test_a_bad_remote_url_is_worded():
    with pytest.raises(nst_client.Failure) as caught:
        nst_client.RemoteSpec('gpu-box:/usr/bin/python3')
    assert 'ssh://[user@]host[:port]/path/to/python' in messages.said(caught.value)


def test_a_memory_refusal_there_offers_fit_to_memory(remote):
    """A size no machine has the memory for is refused up front by the remote's worker, with
    the figures the dialog words its message from."""
    server, runtime, config = remote
    with pytest.raises(nst_client.WorkerFailed) as caught:
        job(config, dict(OPTIONS, size=200000))
    error = caught.value.error
    assert error['kind'] == 'out_of_memory'
    assert 'Fit to memory' in messages.failure(error)


def test_a_trained_model_travels_and_is_loaded_there_with_weights_only(remote, tmp_path):
    """A pickle that would run code is refused there as it would be here: the file went
    over the wire, and the remote loads it with weights_only."""
    server, runtime, config = remote
    evil = tmp_path / 'evil.pth'
    evil.write_bytes(evil_pickle(tmp_path / 'ran'))
    with pytest.raises(nst_client.WorkerFailed) as caught:
        job(config, {'method': 'trained', 'trained_model': str(evil), 'size': 48})
    assert caught.value.error['kind'] == 'weights', caught.value.error
    assert not (tmp_path / 'ran').exists()


def evil_pickle(marker):
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, ('touch %s' % marker,))
    import io
    import zipfile
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w') as z:
        z.writestr('archive/data.pkl', pickle.dumps(Evil(), protocol=2))
        z.writestr('archive/version', '3\n')
    return buf.getvalue()


def test_previews_come_over_the_wire(remote):
    server, runtime, config = remote
    pictures = []

    class Previews(nst_client.Handler):
        def preview(self, event):
            pictures.append(event)

    job(config, dict(OPTIONS, iterations=30, preview_seconds=0.01, preview_side=32),
        Previews())
    assert pictures and all(e['path'] == 'preview.rgba' for e in pictures)


def test_the_wire_is_compressed_where_it_pays():
    flat = bytes(4 * 1000 * 1000)
    noise = np.random.default_rng(0).integers(0, 256, 4 * 100000, np.uint8).tobytes()
    assert protocol.pack(flat)[0] == 'zlib' and len(protocol.pack(flat)[1]) < len(flat) / 100
    assert protocol.pack(noise) == ('raw', noise)
    assert protocol.unpack(*protocol.pack(flat)) == flat
    head = protocol.encode_stream_request({'protocol': 1}, [('content.rgba', 'zlib', 10)])
    assert protocol.parse_stream_request(head) == ({'protocol': 1},
                                                  [('content.rgba', 'zlib', 10)])
    with pytest.raises(protocol.ProtocolError):
        protocol.parse_stream_request(protocol.encode_stream_request(
            {}, [('../etc/passwd', 'raw', 1)]))
    assert json.loads(head)['protocol'] == protocol.PROTOCOL_VERSION


def test_a_weights_repair_for_the_box_is_a_command_through_ssh():
    config = {'python': '/laptop/python', 'cache_dir': '/laptop/weights',
              'remote': 'ssh://me@gpu-box:2222/opt/nst/venv/bin/python'}
    error = {'kind': 'weights', 'message': 'm', 'reason': 'vgg16-caffe is not cached',
             'command': ['weights', 'fetch', 'vgg16-caffe'], 'after': ''}
    text = messages.failure(error, config=config)
    assert "ssh -p 2222 me@gpu-box '/opt/nst/venv/bin/python -m nst_core weights fetch " \
        "vgg16-caffe'" in text
    assert '/laptop' not in text


def test_lines_a_chatty_remote_shell_prints_before_the_hello_are_skipped(remote, tmp_path):
    server, runtime, config = remote
    chatty = tmp_path / 'chatty'
    chatty.write_text('#!/bin/sh\necho "Welcome to the GPU box"\necho\n'
                      'XDG_RUNTIME_DIR=%s exec %s "$@"\n' % (runtime, sys.executable))
    chatty.chmod(0o755)
    result, log = job(dict(config, remote=server.url(str(chatty))))
    assert len(result) == 60 * 40 * 4
    assert any('Welcome to the GPU box' in line for line in log.lines)
