"""The shell over SSH: `stylize --remote` and `batch --remote ...` (nst_core/remote.py) against
real OpenSSH servers on 127.0.0.1 (tests/sshd.py). Each "remote" runs this checkout's engine
through a wrapper with a runtime folder of its own, so each has its own warm worker, as two
machines would; tiny random networks (--model tiny): these tests are about what travels and
what the user is told, not about the look."""
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

import sshd
from conftest import ROOT, scene, stripes


def needs_sshd(test):
    """The tests that start sshd (the wording test at the end needs none)."""
    test = pytest.mark.skipif(sshd.MISSING is not None, reason=sshd.MISSING or '')(test)
    return pytest.mark.ssh(test)


# Quality on the tiny network at the content's size, on the CPU: the same seed gives the same
# picture here and there
ARGS = ('--method', 'quality', '--model', 'tiny', '--device', 'cpu', '--preset', 'draft',
        '--seed', '3')


def _remote(root, name):
    run = root / name / 'run'
    run.mkdir(parents=True, mode=0o700)
    python = root / name / 'python'
    # one thread each: two "machines" on the CPUs of one, where torch's threads of two
    # engines spinning against each other make a step ten times slower
    python.write_text('#!/bin/sh\nXDG_RUNTIME_DIR=%s PYTHONPATH=%s OMP_NUM_THREADS=1 exec %s "$@"\n'
                      % (run, ROOT, sys.executable))
    python.chmod(0o755)
    return SimpleNamespace(run=run, python=python)


def _serve(root, name, remote):
    server = sshd.SSHServer(root / name / 'sshd').start()
    return SimpleNamespace(server=server, label='127.0.0.1:%d' % server.port,
                           url=server.url(str(remote.python)),
                           ssh=' '.join(server.ssh_command), **vars(remote))


def _kill_warm_workers(run):
    """The warm workers a remote started: `serve --socket <its runtime folder>/...`."""
    for pid in os.listdir('/proc'):
        try:
            with open('/proc/%s/cmdline' % pid, 'rb') as f:
                argv = f.read().split(b'\0')
        except OSError:
            continue
        if b'serve' in argv and any(str(run).encode() in a for a in argv):
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass


@pytest.fixture(scope='module')
def remotes():
    """Two remotes, a and b, each an sshd of its own (short paths: AF_UNIX's limit)."""
    root = Path(tempfile.mkdtemp(prefix='nsrc-', dir='/tmp'))
    made = []
    try:
        for name in 'ab':
            made.append(_serve(root, name, _remote(root, name)))
        yield SimpleNamespace(root=root, a=made[0], b=made[1])
    finally:
        for r in made:
            r.server.stop()
            _kill_warm_workers(r.run)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pictures(tmp_path):
    scene(60, 40).save(tmp_path / 'content.png')
    stripes(40, 40).save(tmp_path / 'style.png')
    return tmp_path


def errors(stderr):
    return [line for line in stderr.splitlines() if 'error:' in line]


@needs_sshd
def test_stylize_remote_paints_the_local_picture(remotes, pictures, run_cli, monkeypatch):
    a = remotes.a
    monkeypatch.setenv('OMP_NUM_THREADS', '1')       # as the remotes: the same sums' order
    common = (pictures / 'content.png', pictures / 'style.png', *ARGS, '--iterations', '3',
              '--size', '48')
    here, there, local, remote = _here_and_there(run_cli, common, a, pictures)
    assert local.shape == remote.shape == (32, 48, 3)      # the working size, as here
    assert np.abs(local - remote).max() <= 1
    assert 'wrote %s (48x32)' % (pictures / 'there.png') in there.stderr
    assert not list(pictures.glob('.*'))


def _here_and_there(run_cli, common, remote, pictures):
    """`stylize` here and through ssh: both processes and both pictures (int16 arrays)."""
    here = run_cli('stylize', *common, '-o', pictures / 'here.png')
    there = run_cli('stylize', *common, '-o', pictures / 'there.png', '--remote', remote.url,
                    '--ssh-command', remote.ssh)
    assert here.returncode == 0, here.stderr
    assert there.returncode == 0, there.stderr
    return here, there, *(np.asarray(Image.open(pictures / n), np.int16)
                          for n in ('here.png', 'there.png'))


def _half_mask(w, h):
    a = np.zeros((h, w), np.uint8)
    a[:, : w // 2] = 255
    return Image.fromarray(a)


@needs_sshd
def test_masks_travel_and_paint_the_local_picture(remotes, pictures, run_cli, monkeypatch):
    """Style masks (sent at the working size, as the content) and painting masks (at the
    painting's) go over SSH: the picture is the local one. In a batch, a photo the mask does
    not fit fails here, before anything is sent, and the others are painted there."""
    a = remotes.a
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    scene(40, 40, seed=5).save(pictures / 'style2.png')
    _half_mask(60, 40).save(pictures / 'left.png')
    _half_mask(40, 40).transpose(Image.Transpose.ROTATE_90).save(pictures / 'bottom.png')
    common = (pictures / 'content.png', pictures / 'style.png', pictures / 'style2.png',
              '--style-masks', pictures / 'left.png', '-', '--painting-masks', '-',
              pictures / 'bottom.png', *ARGS, '--iterations', '3', '--size', '48')
    here, there, local, remote = _here_and_there(run_cli, common, a, pictures)
    assert local.shape == remote.shape == (32, 48, 3)
    assert np.abs(local - remote).max() <= 1
    plain = run_cli('stylize', *common[:3], *ARGS, '--iterations', '3', '--size', '48',
                    '-o', pictures / 'plain.png')
    assert plain.returncode == 0, plain.stderr
    assert np.abs(np.asarray(Image.open(pictures / 'plain.png'), np.int16) - remote).mean() > 1
    photos = pictures / 'photos'
    photos.mkdir()
    for i in range(2):
        scene(60, 40, seed=i).save(photos / ('p%d.png' % i))
    scene(50, 50).save(photos / 'square.png')
    out = pictures / 'out'
    proc = run_cli('batch', photos, '-s', pictures / 'style.png', pictures / 'style2.png',
                   '-o', out, '--style-masks', pictures / 'left.png', *ARGS, '--iterations', '2',
                   '--remote', a.url, '--ssh-command', a.ssh)
    assert proc.returncode == 1, proc.stderr
    assert errors(proc.stderr)[0] == (
        'nst_core: error: style mask %s is 60x40 but the photo %s is 50x50: a style mask must '
        'have the size of its photo' % (pictures / 'left.png', photos / 'square.png'))
    assert sorted(p.name for p in out.iterdir()) == ['p0.png', 'p1.png']


@needs_sshd
def test_an_error_event_is_the_line_a_local_run_prints(remotes, pictures, run_cli):
    a = remotes.a
    common = (pictures / 'content.png', pictures / 'style.png', *ARGS, '--strength', '3')
    here = run_cli('stylize', *common, '-o', pictures / 'here.png')
    there = run_cli('stylize', *common, '-o', pictures / 'there.png', '--remote', a.url,
                    '--ssh-command', a.ssh)
    assert here.returncode == there.returncode == 2, there.stderr
    assert errors(there.stderr) == errors(here.stderr) == [
        'nst_core: error: strength must be between 0 and 2, not 3.0']
    assert not (pictures / 'there.png').exists()
    # what depends on the machine names it: its devices are not this computer's
    there = run_cli('stylize', pictures / 'content.png', pictures / 'style.png', *ARGS,
                    '--device', 'mps', '-o', pictures / 'there.png', '--remote', a.url,
                    '--ssh-command', a.ssh)
    assert there.returncode == 2, there.stderr
    [line] = errors(there.stderr)
    assert line.startswith("nst_core: error: %s: device 'mps' is not available" % a.label)


@needs_sshd
@pytest.mark.parametrize('fault', ['no key login', 'unknown host key', 'no url'])
def test_a_refused_login_is_one_line_naming_the_host_within_seconds(remotes, pictures, run_cli,
                                                                     fault):
    a, b = remotes.a, remotes.b
    keys = a.server.folder / 'authorized_keys'
    saved = keys.read_text()
    url, ssh = a.url, a.ssh
    if fault == 'no key login':
        keys.write_text('')
    elif fault == 'unknown host key':
        ssh = b.ssh                                  # its known_hosts knows only b
    else:
        url = 'ssh://127.0.0.1:%d' % a.server.port   # no interpreter named
    start = time.monotonic()
    try:
        proc = run_cli('stylize', pictures / 'content.png', pictures / 'style.png', *ARGS,
                       '-o', pictures / 'out.png', '--remote', url, '--ssh-command', ssh)
    finally:
        keys.write_text(saved)
    assert time.monotonic() - start < 30
    assert proc.returncode == 2, proc.stderr
    [line] = errors(proc.stderr)
    if fault == 'no key login':
        assert line.startswith('nst_core: error: %s: ssh could not log in: ' % a.label)
        assert 'Permission denied' in line
        assert 'ssh-copy-id -p %d %s@127.0.0.1' % (a.server.port, a.server.user) in line
    elif fault == 'unknown host key':
        assert line.startswith('nst_core: error: %s: ssh refused the host key: ' % a.label)
        assert 'Host key verification failed' in line
    else:
        assert 'is no remote worker: write ssh://[user@]host[:port]/path/to/python' in line
    assert not (pictures / 'out.png').exists()


def photos(folder, count):
    folder.mkdir()
    for i in range(count):
        scene(60, 40, seed=i).save(folder / ('p%d.png' % i))
    return folder


@needs_sshd
def test_batch_spreads_the_photos_over_the_remotes(remotes, pictures, run_cli):
    a, b = remotes.a, remotes.b
    out = pictures / 'out'
    # one ssh config for both, as a user's ~/.ssh/config would be
    config = pictures / 'ssh_config'
    known = pictures / 'known_hosts'
    known.write_text(a.server.known_hosts.read_text() + b.server.known_hosts.read_text())
    config.write_text('Host *\n  IdentityFile %s\n  IdentityFile %s\n  IdentitiesOnly yes\n'
                      '  UserKnownHostsFile %s\n  GlobalKnownHostsFile /dev/null\n'
                      '  StrictHostKeyChecking yes\n  LogLevel ERROR\n'
                      % (a.server.user_key, b.server.user_key, known))
    proc = run_cli('batch', photos(pictures / 'photos', 4), '-s', pictures / 'style.png', '-o', out,
                   *ARGS, '--iterations', '5', '--remote', a.url, '--remote', b.url,
                   '--ssh-command', 'ssh -F %s' % config)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ['p%d.png' % i for i in range(4)]
    wrote = [line for line in proc.stderr.splitlines() if line.startswith('wrote ')]
    on = [line.rsplit(' on ', 1)[1] for line in wrote[:-1]]
    assert len(on) == 4 and set(on) == {a.label, b.label}, proc.stderr
    assert wrote[-1].startswith('wrote 4 pictures to')


@needs_sshd
def test_a_remote_killed_mid_batch_gives_its_photo_to_the_other(remotes, pictures):
    """In-process, so that the kill lands at a known point: c (a third sshd, to b's engine)
    is killed at the first progress of its second photo."""
    from nst_core import remote
    a = remotes.a
    c = _serve(remotes.root, 'c', SimpleNamespace(run=remotes.b.run, python=remotes.b.python))
    hosts = [remote.Host(a.url, a.server.ssh_command), remote.Host(c.url, c.server.ssh_command)]
    said, warned, fractions, killed = [], [], [], []

    def progress(p):
        fractions.append(p.fraction)
        if not killed and ' on %s:' % c.label in p.stage \
                and any(line.endswith(' on ' + c.label) for line in said):
            killed.append(p.stage)
            c.server.stop()                     # its sessions first, then sshd

    out = pictures / 'out'
    try:
        summary = remote.stylize_all(
            [photos(pictures / 'photos', 6)], [Image.open(pictures / 'style.png')], out,
            dict(method='quality', model='tiny', device='cpu', preset='draft', seed=3,
                 iterations=40), hosts, callback=progress, say=said.append,
            warn=warned.append)
    finally:
        c.server.stop()
    assert killed, said
    assert summary.ok and len(summary.written) == len(set(summary.written)) == 6, warned
    assert sorted(p.name for p in out.iterdir()) == ['p%d.png' % i for i in range(6)]
    [line] = warned
    assert line.startswith('%s: the connection was lost in the middle of the job' % c.label)
    assert line.endswith('goes to the other hosts and %s is not used again' % c.label)
    on_c = [s for s in said if s.endswith(' on ' + c.label)]
    assert len(on_c) >= 1 and len([s for s in said if s.startswith('wrote ')]) == 6
    lost = killed[0].split(' ')[1]              # the photo c was painting
    assert [s for s in said if s.startswith('wrote %s ' % (out / lost))][0].endswith(
        ' on ' + a.label)
    assert all(0 <= f <= 1 for f in fractions)


def test_the_remote_failures_are_worded_for_the_shell_naming_the_host():
    """Without ssh: the kinds nst_client raises, and a weights repair to run on the box."""
    import nst_client
    from nst_core import remote
    host = remote.Host("ssh://me@gpu-box:2222/home/me/my venv/bin/python",
                       ['ssh', '-F', '/home/me/.ssh/gpu config'])
    said = {kind: remote.words(nst_client.Failure(kind, **fields), host.spec) for kind, fields in [
        ('remote_engine', dict(host='gpu-box:2222', python='/x/python', reason='sh: 1: '
                               '/x/python: not found\n')),
        ('remote_version', dict(host='gpu-box:2222', found='0.0.9', wanted='0.1.0')),
        ('remote_lost', dict(host='gpu-box:2222', code=255, log_tail='Connection to gpu-box '
                             'closed by remote host.'))]}
    assert said['remote_engine'] == (
        'gpu-box:2222: no nst_core engine answered at /x/python (sh: 1: /x/python: not found). '
        'Install it there, in the Neural Style folder: python3 install.py --worker-only')
    assert said['remote_version'].startswith('gpu-box:2222: the engine there is nst_core '
                                             '0.0.9, this one is 0.1.0. Update it there')
    assert said['remote_lost'] == ('gpu-box:2222: the connection was lost in the middle of '
                                   'the job (Connection to gpu-box closed by remote host.)')
    error = {'event': 'error', 'kind': 'weights', 'message': 'vgg19 is missing; run `python '
             '-m nst_core weights fetch vgg19`', 'reason': 'vgg19 is missing',
             'command': ['weights', 'fetch', 'vgg19'], 'after': ''}
    failed = host._worker_failed(nst_client.WorkerFailed(1, error, None))
    assert (failed.kind, failed.host_lost) == ('weights', False)
    assert failed.message == (
        "gpu-box:2222: vgg19 is missing; run `ssh -F '/home/me/.ssh/gpu config' -p 2222 "
        "me@gpu-box ''\"'\"'/home/me/my venv/bin/python'\"'\"' -m nst_core weights fetch vgg19'`")


@needs_sshd
def test_with_every_host_gone_the_photos_left_are_failed_not_lost(remotes, pictures, run_cli):
    """A box that refuses the log-in is gone at its first photo: with no other, one line says
    so, every photo is listed as failed, nothing is written, exit 1."""
    a = remotes.a
    config = pictures / 'no_key_config'
    config.write_text('Host *\n  IdentityFile %s\n  IdentitiesOnly yes\n'
                      '  UserKnownHostsFile %s\n  GlobalKnownHostsFile /dev/null\n'
                      '  StrictHostKeyChecking yes\n  LogLevel ERROR\n'
                      % (pictures / 'missing_key', a.server.known_hosts))
    out = pictures / 'out'
    proc = run_cli('batch', photos(pictures / 'photos', 3), '-s', pictures / 'style.png',
                   '-o', out, *ARGS, '--remote', a.url, '--ssh-command', 'ssh -F %s' % config)
    assert proc.returncode == 1, proc.stderr
    assert 'no host is left for the 3 photos not painted' in proc.stderr
    assert 'Permission denied' in proc.stderr and a.label in proc.stderr
    assert '3 of 3 photos failed' in proc.stderr
    assert not out.exists() or not list(out.iterdir())
