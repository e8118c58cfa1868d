"""The "GPU box" of tests/gimp/remote_test.py: this host, reached from GIMP in the chroot by
ssh to 127.0.0.1 (the chroot shares the host's network). tests/gimp/run.sh runs it with the
host's python (NS_REMOTE_PYTHON: an engine with torch and the weights in its own cache):

    python remote_host.py CHROOT RUN

It starts Debian's sshd on 127.0.0.1 (tests/sshd.py: throw-away host and user keys), writes
the remote "python" (a wrapper of this interpreter whose warm worker lives in a runtime
folder of its own, so that the test finds it and this script ends it), puts what the ssh
client in the chroot needs into CHROOT/RUN/remote (the chroot cannot see the host's /tmp):
the user key, known_hosts, an ssh config naming them by their paths inside the chroot, and
remote.json ({"url", "ssh_command", "runtime"}), and then waits. On SIGTERM it stops sshd,
ends the warm workers of that runtime folder and leaves their logs and sshd's in
CHROOT/RUN/out.
"""
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import sshd  # noqa: E402  (tests/sshd.py)


def wrapper(path, runtime):
    """The remote interpreter: this one, with its own runtime folder (its warm worker's
    socket and log), the test's thread count and weights folder (sshd gives a session a
    fresh environment)."""
    keep = ''.join(' %s=%s' % (name, os.environ[name]) for name in
                   ('OMP_NUM_THREADS', 'NST_CORE_CACHE') if os.environ.get(name))
    path.write_text('#!/bin/sh\nXDG_RUNTIME_DIR=%s%s exec %s "$@"\n'
                    % (runtime, keep, sys.executable))
    path.chmod(0o755)


def workers(runtime):
    """The pids of the warm workers (nst_core serve) whose socket is in runtime."""
    found = []
    for name in os.listdir('/proc'):
        try:
            with open('/proc/%s/cmdline' % name, 'rb') as f:
                args = f.read().split(b'\0')
        except (OSError, ValueError):
            continue
        if b'serve' in args and any(a.startswith(str(runtime).encode()) for a in args):
            found.append(int(name))
    return found


def client_files(server, inside, chroot):
    """Copies of the client's key and known_hosts in `inside` (a folder in the chroot), and
    an ssh config naming them as the chroot sees them; the ssh_command that uses it."""
    seen = '/' + str(inside.relative_to(chroot))
    for name in ('user_key', 'known_hosts'):
        shutil.copy(server.folder / name, inside / name)
    os.chmod(inside / 'user_key', 0o600)
    (inside / 'ssh_config').write_text(
        server.client_config.read_text()
        .replace(str(server.user_key), seen + '/user_key')
        .replace(str(server.known_hosts), seen + '/known_hosts'))
    return ['ssh', '-F', seen + '/ssh_config']


def main(chroot, run):
    chroot = Path(chroot)
    inside = chroot / run.lstrip('/') / 'remote'
    out = chroot / run.lstrip('/') / 'out'
    inside.mkdir(mode=0o700, parents=True)
    box = Path(tempfile.mkdtemp(prefix='nst-gpu-box-'))
    runtime = box / 'run'
    runtime.mkdir(mode=0o700)
    server = None
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server = sshd.SSHServer(box / 'sshd').start()
        wrapper(box / 'python', runtime)
        ssh_command = client_files(server, inside, chroot)
        with open(inside / 'remote.json.part', 'w') as f:
            json.dump({'url': server.url(str(box / 'python')), 'ssh_command': ssh_command,
                       'runtime': str(runtime)}, f)
        os.replace(inside / 'remote.json.part', inside / 'remote.json')
        print('sshd on 127.0.0.1:%d, remote python %s' % (server.port, box / 'python'),
              flush=True)
        while True:
            time.sleep(3600)
    finally:
        if server:
            server.stop()
        for pid in workers(runtime):
            os.kill(pid, signal.SIGKILL)
        for log in [box / 'sshd' / 'sshd.log'] + sorted(runtime.glob('neural-style/*.log')):
            if log.exists() and out.is_dir():
                shutil.copy(log, out / ('remote-' + log.name))
        shutil.rmtree(box, ignore_errors=True)


if __name__ == '__main__':
    if sshd.MISSING:
        sys.exit('remote_host.py: %s' % sshd.MISSING)
    main(*sys.argv[1:3])
