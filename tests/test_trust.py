"""Trust: after install the worker never reaches the network, and it leaves no files behind
but its result. (Damaged weights and pickles that would run code: tests/test_weights.py,
test_damaged_cache_file_refused_with_fix and test_code_in_pickle_never_runs.)"""
import os
import signal
import subprocess
import sys

import pytest

from conftest import ROOT, cached_weights, scene, stripes
import nst_protocol as protocol
from nst_core import weights
from test_worker import events_of, write_job

# Runs first in the worker (sitecustomize): any socket use is recorded and refused.
GUARD = r'''
import os, sys
def _guard(event, args):
    if event in ('socket.connect', 'socket.getaddrinfo', 'socket.gethostbyname',
                 'urllib.Request'):
        with open(os.environ['NET_LOG'], 'a') as f:
            f.write('%s %r\n' % (event, args[:2]))
        raise OSError('network blocked by the test')
sys.addaudithook(_guard)
'''
DEAD_PROXY = 'http://127.0.0.1:9'          # discard port: nothing listens


def offline_env(tmp_path):
    guard = tmp_path / 'guard'
    guard.mkdir()
    (guard / 'sitecustomize.py').write_text(GUARD)
    tmp = tmp_path / 'tmp'
    tmp.mkdir()
    env = dict(os.environ, PYTHONPATH='%s%s%s' % (guard, os.pathsep, ROOT),
               NET_LOG=str(tmp_path / 'net.log'), TMPDIR=str(tmp))
    for name in ('http_proxy', 'https_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY',
                 'all_proxy'):
        env[name] = DEAD_PROXY
    env.pop('NO_PROXY', None)
    env.pop('no_proxy', None)
    return env


def left_in_tmp(tmp_path):
    """Files left in TMPDIR, except torch's own shared compile cache (torchinductor_<user>,
    made once and reused by every run, holding no job data)."""
    return [p.name for p in (tmp_path / 'tmp').iterdir()
            if not p.name.startswith('torchinductor_')]


def run_worker(job, env, timeout=600):
    proc = subprocess.run([sys.executable, '-m', 'nst_core', 'worker', job], cwd=ROOT, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout)
    return proc.returncode, events_of(proc.stdout), proc.stderr


def test_the_guard_catches_a_connection(tmp_path):
    """The check below can fail: a worker-like process that does connect is caught."""
    env = offline_env(tmp_path)
    code = 'import urllib.request as u; u.urlopen("http://example.invalid/", timeout=2)'
    proc = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True)
    assert proc.returncode != 0
    assert (tmp_path / 'net.log').read_text()


@pytest.mark.slow
@pytest.mark.parametrize('method', ['fast', 'quality'])
def test_worker_with_cached_weights_never_touches_the_network(tmp_path, method):
    cached_weights('magenta', weights.VGG_AUTO_ORDER[0])     # what model=auto loads first
    env = offline_env(tmp_path)
    job_dir = tmp_path / 'job'
    job_dir.mkdir()
    job = write_job(job_dir, scene(48, 40), [stripes(40, 40)], model='auto', method=method,
                    size=40, preset='draft', iterations=2)
    code, events, err = run_worker(job, env)
    assert code == 0, err
    assert events[-1]['event'] == 'done'
    assert not (tmp_path / 'net.log').exists(), (tmp_path / 'net.log').read_text()
    assert left_in_tmp(tmp_path) == []


@pytest.mark.parametrize('outcome', ['done', 'failed', 'cancelled'])
def test_worker_leaves_only_its_result_in_the_job_folder_and_nothing_in_tmp(tmp_path, outcome):
    env = offline_env(tmp_path)
    job_dir = tmp_path / 'job'
    job_dir.mkdir()
    opts = dict(size=32, preset='draft', iterations=1)
    if outcome == 'failed':
        opts['strength'] = 5
    if outcome == 'cancelled':
        opts['iterations'] = 100000
    job = write_job(job_dir, scene(32, 32), [stripes(32, 32)], **opts)
    before = sorted(p.name for p in job_dir.iterdir())
    proc = subprocess.Popen([sys.executable, '-m', 'nst_core', 'worker', job], cwd=ROOT,
                            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    if outcome == 'cancelled':
        for line in proc.stdout:
            if protocol.parse_event(line)['event'] == 'progress':
                break
        proc.send_signal(signal.SIGTERM)
    proc.stdout.read()
    proc.stdout.close()
    proc.stdin.close()
    code = proc.wait(timeout=300)
    want = {'done': protocol.EXIT_OK, 'failed': protocol.EXIT_FAILED,
            'cancelled': protocol.EXIT_CANCELLED}[outcome]
    assert code == want
    after = sorted(p.name for p in job_dir.iterdir())
    assert after == sorted(before + (['result.rgba'] if outcome == 'done' else []))
    assert left_in_tmp(tmp_path) == []
    assert not (tmp_path / 'net.log').exists()
