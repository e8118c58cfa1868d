"""A real OpenSSH server for the tests of the worker over SSH: Debian's sshd, started on
127.0.0.1 with throw-away host and user keys and a config of its own (no system service),
and the ssh client settings that trust exactly it (passed as the product's "ssh_command").
"""
import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

SSHD = shutil.which('sshd') or '/usr/sbin/sshd'
MISSING = None if os.path.exists(SSHD) and shutil.which('ssh') and shutil.which('ssh-keygen') \
    else 'needs OpenSSH (apt-get install openssh-server openssh-client)'


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def keygen(path):
    subprocess.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', str(path)],
                   check=True, stdout=subprocess.DEVNULL)


class SSHServer:
    """sshd on 127.0.0.1:port for this user. .ssh_command logs in with the throw-away key and
    knows only this server's host key; .url(python) names a worker there."""

    def __init__(self, folder: Path, user_key: Path = None):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, 0o700)
        self.user = getpass.getuser()
        self.port = free_port()
        self.host_key = folder / 'host_key'
        keygen(self.host_key)
        self.user_key = user_key or folder / 'user_key'
        if not self.user_key.exists():
            keygen(self.user_key)
        (folder / 'authorized_keys').write_text((folder / 'user_key.pub').read_text()
                                                if user_key is None else
                                                Path(str(user_key) + '.pub').read_text())
        self.known_hosts = folder / 'known_hosts'
        self.trust()
        (folder / 'sshd_config').write_text('\n'.join([
            'Port %d' % self.port, 'ListenAddress 127.0.0.1',
            'HostKey %s' % self.host_key, 'PidFile %s' % (folder / 'sshd.pid'),
            'AuthorizedKeysFile %s' % (folder / 'authorized_keys'),
            'PasswordAuthentication no', 'KbdInteractiveAuthentication no',
            'PermitRootLogin prohibit-password', 'UsePAM no', 'StrictModes no',
            'AllowUsers %s' % self.user, 'LogLevel VERBOSE', '']))
        self.client_config = folder / 'ssh_config'
        self.client_config.write_text('\n'.join([
            'Host *', '  IdentityFile %s' % self.user_key, '  IdentitiesOnly yes',
            '  UserKnownHostsFile %s' % self.known_hosts, '  GlobalKnownHostsFile /dev/null',
            '  StrictHostKeyChecking yes', '  LogLevel ERROR', '']))
        self.proc = None

    def trust(self, key_file=None):
        """known_hosts holds this server's host key (or another's, to test a changed one)."""
        key = Path(str(key_file or self.host_key) + '.pub').read_text().split()[:2]
        self.known_hosts.write_text('[127.0.0.1]:%d %s %s\n' % (self.port, *key))

    @property
    def ssh_command(self):
        return ['ssh', '-F', str(self.client_config)]

    def url(self, python):
        return 'ssh://%s@127.0.0.1:%d%s' % (self.user, self.port, python)

    def start(self):
        if os.geteuid() == 0:
            os.makedirs('/run/sshd', mode=0o755, exist_ok=True)   # its privilege separation
        self.proc = subprocess.Popen([SSHD, '-D', '-e', '-f', str(self.folder / 'sshd_config')],
                                     stdout=subprocess.DEVNULL,
                                     stderr=open(self.folder / 'sshd.log', 'wb'))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError('sshd exited: %s' % (self.folder / 'sshd.log').read_text())
            with socket.socket() as s:
                if s.connect_ex(('127.0.0.1', self.port)) == 0:
                    return self
            time.sleep(0.05)
        raise RuntimeError('sshd did not listen on port %d' % self.port)

    def sessions(self):
        """The pids of sshd's per-connection processes (its children)."""
        out = subprocess.run(['pgrep', '-P', str(self.proc.pid)], capture_output=True,
                             text=True).stdout
        return [int(pid) for pid in out.split()]

    def kill_sessions(self):
        for pid in self.sessions():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.kill_sessions()
            self.proc.terminate()
            self.proc.wait(5)
