"""The worker client: runs one job on an nst_core worker (docs/protocol.md) for the plug-in.

Standard library only, and no GIMP: the plug-in hands it pixels, a poll() to call while it
waits and a handler for the events; the tests drive it without GIMP. Two channels reach a
worker: the warm worker's socket (`serve`, kept up between runs: torch and the networks stay
loaded) and a one-shot worker's pipe (keep_alive_seconds 0, a busy warm worker, or no Unix
sockets). A remote worker would be a third channel here.

A job lives in a private folder (JobFolder). GIMP's Cancel SIGKILLs the plug-in and its
process group: the one-shot worker dies with it, the warm worker (a session of its own) sees
its connection close and drops the job; the folder's janitor, a process in a session of its
own, removes the folder once the plug-in is gone.
"""
import hashlib
import json
import os
import queue
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time

import nst_protocol  # beside this file once installed; at the checkout's top in a checkout

JOB_PREFIX = 'neural-style-'
POLL_SECONDS = 0.1
TERMINATE_GRACE = 2.0                # SIGTERM first, SIGKILL after this many seconds
STDERR_TAIL_LINES = 15
STALE_JOB_AGE = 24 * 3600            # where a dead owner cannot be detected (Windows)
HELLO_SECONDS = 5.0                  # a live worker answers a connection at once
BUSY_WAIT_SECONDS = 3.0              # a cancelled job ends within a second: wait that long
START_SECONDS = 120.0                # a new warm worker listens after Python and torch load


class Failure(Exception):
    """The run failed, and the user is to be told what went wrong and what to do.

    The client holds no words for the user: it raises a kind and the fields its message is
    made from, and the plug-in's messages.py words each kind (messages.said). Its kinds:
    buffer_missing (name, reason), buffer_size (name, size, expected, width, height),
    interpreter (python, reason, config), worker_folder (path), stalled and time_limit
    (seconds, config, log_tail). Kind 'said' carries words made elsewhere (text): the
    plug-in's own checks, already worded by messages.py.
    """

    def __init__(self, kind, **fields):
        super().__init__(kind, fields)
        self.kind, self.fields = kind, fields

    @classmethod
    def said(cls, text):
        return cls('said', text=text)

    def __str__(self):
        """Its words where it carries them (kind 'said'); else its kind and fields, for logs."""
        if self.kind == 'said':
            return str(self.fields.get('text'))
        return '%s %s' % (self.kind, ' '.join('%s=%r' % item
                                              for item in sorted(self.fields.items())))


class Cancelled(Exception):
    pass


class WorkerFailed(Exception):
    """The worker ended the job without a result: exit code (None: unknown), its error event
    (None: it sent none) and the path of its log, for the caller to word."""

    def __init__(self, code, error, log_path):
        super().__init__(code, error, log_path)
        self.code, self.error, self.log_path = code, error, log_path


class Hooks:
    """Where the plug-in's test hooks plug in (probe.Hooks); these do nothing."""

    def log(self, message):
        pass

    def kill(self, point):
        pass


def tail(path, lines=STDERR_TAIL_LINES):
    try:
        with open(path, encoding='utf-8', errors='replace') as f:
            text = f.read()[-20000:]
    except (OSError, TypeError):
        return ''
    return '\n'.join(text.strip().splitlines()[-lines:])


# ---------------------------------------------------------------- the job folder

def _buffer_names(job):
    """The files a job.json names (its content, its paintings, their masks and the style
    masks), each once, in that order: what a remote worker must be sent."""
    names = [job['content']['path']] + [s['path'] for s in job['styles']]
    names += [s['painting_mask']['path'] for s in job['styles'] if s.get('painting_mask')]
    names += [m['path'] for m in job.get('style_masks') or () if m]
    return list(dict.fromkeys(names))


class JobFolder:
    """A private folder (mode 0700) for one job's buffers, removed afterwards however the
    plug-in ends (the janitor)."""

    def __init__(self, config, hooks=Hooks()):
        self.config, self.hooks = config, hooks
        self.path, self.janitor = None, None

    def __enter__(self):
        sweep_stale_jobs()
        self.path = tempfile.mkdtemp(prefix='%s%d-' % (JOB_PREFIX, os.getpid()))
        self.janitor = _start_janitor(self.config, self.path)
        self.hooks.log('job-dir %s plugin-pid %d' % (self.path, os.getpid()))
        self.hooks.log('janitor-pid %s' % (self.janitor.pid if self.janitor else None))
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self.path, ignore_errors=True)
        _end_janitor(self.janitor)

    def buffer(self, name, width, height, data, weight=1.0):
        with open(os.path.join(self.path, name), 'wb') as f:
            f.write(data)
        return nst_protocol.Buffer(name, width, height, weight)

    def mask(self, name, width, height, data):
        """A mask buffer (one byte a pixel): where a style paints, or what of a painting."""
        with open(os.path.join(self.path, name), 'wb') as f:
            f.write(data)
        return nst_protocol.mask_buffer(name, width, height)

    def write_job(self, content, styles, options, style_masks=None):
        job = nst_protocol.Job(content, styles, 'result.rgba', options, style_masks)
        return nst_protocol.write_job(job, self.path)

    def read(self, name, width, height):
        """A buffer the worker wrote (the result, a preview), checked against its size."""
        try:
            with open(os.path.join(self.path, name), 'rb') as f:
                data = f.read()
        except OSError as e:
            raise Failure('buffer_missing', name=name, reason=e.strerror) from None
        if len(data) != width * height * 4:
            raise Failure('buffer_size', name=name, size=len(data),
                          expected=width * height * 4, width=width, height=height)
        return data


def _owner_gone(entry):
    """True for the job folder of a plug-in process that no longer runs."""
    try:
        pid = int(entry.name[len(JOB_PREFIX):].split('-', 1)[0])
    except ValueError:
        return False
    if pid == os.getpid():
        return False
    if os.name != 'posix':          # os.kill(pid, 0) would terminate the process on Windows
        return time.time() - entry.stat().st_mtime > STALE_JOB_AGE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def sweep_stale_jobs():
    """Remove job folders left behind by runs that GIMP killed (its Cancel kills the plug-in)."""
    try:
        entries = list(os.scandir(tempfile.gettempdir()))
    except OSError:
        return
    for entry in entries:
        try:
            mine = os.name != 'posix' or entry.stat().st_uid == os.getuid()
            if entry.name.startswith(JOB_PREFIX) and entry.is_dir(follow_symlinks=False) \
                    and mine and _owner_gone(entry):
                shutil.rmtree(entry.path, ignore_errors=True)
        except OSError:
            continue


# The janitor removes the job folder when the plug-in is gone, however it went: GIMP's Cancel
# SIGKILLs the plug-in and its process group, so no code of the plug-in runs afterwards. It
# reads its stdin, a pipe only the plug-in holds, until end-of-file, and lives in a session of
# its own, out of the reach of that kill. Standard library only, run with -I -S (no site, no
# user paths); the run does not wait for it to start.
JANITOR = r"""
import os, shutil, sys, time
folder = sys.argv[1]
try:
    while os.read(0, 4096):
        pass
except OSError:
    pass
for _ in range(100):                # a worker stopping on its closed stdin may still write
    shutil.rmtree(folder, ignore_errors=True)
    if not os.path.exists(folder):
        break
    time.sleep(0.05)
"""


def _janitor_pythons(config):
    """GIMP's own Python first: the config's may be a wrapper that expects the worker's
    arguments (the tests' are); then the worker's."""
    own = sys.executable
    if own and os.path.basename(own).lower().startswith('python'):
        yield own
    if config.get('python'):
        yield config['python']


def _start_janitor(config, job_dir):
    for python in _janitor_pythons(config):
        try:
            return subprocess.Popen([python, '-I', '-S', '-c', JANITOR, job_dir],
                                    stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, close_fds=True,
                                    start_new_session=(os.name == 'posix'),
                                    creationflags=getattr(subprocess, 'CREATE_NO_WINDOW', 0))
        except OSError:
            continue
    return None                      # then sweep_stale_jobs cleans up after a kill


def _end_janitor(janitor):
    if janitor is None:
        return
    try:
        janitor.stdin.close()
        janitor.wait(2)
    except (OSError, subprocess.TimeoutExpired):
        pass


# ---------------------------------------------------------------- starting workers

def worker_env(config):
    env = dict(os.environ)
    if config.get('cache_dir'):
        env['NST_CORE_CACHE'] = config['cache_dir']
    for name in ('PYTHONHOME', 'PYTHONPATH'):     # GIMP's own Python settings, not the venv's
        env.pop(name, None)
    return env


def _popen(config, args, env=None, **kw):
    try:
        return subprocess.Popen([config['python'], '-m', 'nst_core', *args],
                                env=dict(worker_env(config), **(env or {})),
                                creationflags=getattr(subprocess, 'CREATE_NO_WINDOW', 0), **kw)
    except OSError as e:
        raise Failure('interpreter', python=config['python'], reason=str(e.strerror or e),
                      config=config['_path']) from None


def _pump(stream, lines):
    """Reader thread: the main loop must never block on the worker."""
    try:
        for line in iter(stream.readline, b''):
            lines.put(line)
    except (OSError, ValueError):        # the channel was closed under us
        pass
    lines.put(None)


def _descendants(pid):
    """The processes the worker started, from /proc (Linux; elsewhere none are known)."""
    children = {}
    try:
        names = [name for name in os.listdir('/proc') if name.isdigit()]
    except OSError:
        return []
    for name in names:
        try:
            with open('/proc/%s/stat' % name, 'rb') as f:
                ppid = int(f.read().rsplit(b')', 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _kill(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)   # pids is empty where SIGKILL does not exist
        except OSError:
            pass


# ---------------------------------------------------------------- channels

class Pipe:
    """A one-shot worker: `worker job.json`, events on its stdout, cancelled by closing its
    stdin or SIGTERM."""

    kind = 'one-shot'

    def __init__(self, config, job_path):
        folder = os.path.dirname(job_path)
        self.log_path = os.path.join(folder, 'worker-stderr.txt')
        # its temporary files (torch 2.6 writes a module at import, and removes it only at a
        # normal exit) go with the job folder, which is removed however the run ends
        tmp = os.path.join(folder, 'tmp')
        os.makedirs(tmp, mode=0o700, exist_ok=True)
        with open(self.log_path, 'wb') as err:
            self.proc = _popen(config, ['worker', job_path], env={'TMPDIR': tmp},
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                               cwd=folder)
        self.pid = self.proc.pid
        self.lines = queue.Queue()
        threading.Thread(target=_pump, args=(self.proc.stdout, self.lines), daemon=True).start()

    def stop(self, grace=TERMINATE_GRACE, stuck=False):
        """Close its stdin, SIGTERM, SIGKILL if it has not gone in `grace` seconds (at once
        for 0); then SIGKILL what it started (a stuck worker's children would outlive it)."""
        family = _descendants(self.proc.pid)  # now: once the worker dies they are re-parented
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        if self.proc.poll() is None:
            if grace:
                self.proc.terminate()
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        _kill(family)
        self.close()

    def finish(self, done, error):
        code = self.proc.wait()
        self.close()
        return code

    def close(self):
        try:
            self.proc.stdout.close()
        except OSError:
            pass


class Connection:
    """A job on the warm worker: its events on a socket; closing the socket cancels it."""

    kind = 'warm'

    def __init__(self, sock, hello, log_path):
        self.sock, self.pid, self.log_path = sock, hello['pid'], log_path
        self.lines = queue.Queue()
        self.reader = sock.makefile('rb')

    def send_job(self, job_path, owner=None):
        """owner: the process the job runs for (default: this plug-in's GIMP); the remote end
        names none, so that its warm worker outlives each SSH session."""
        owner = gimp_owner() if owner is None else owner or None
        self.sock.sendall(nst_protocol.encode_request(job_path, owner).encode())
        threading.Thread(target=_pump, args=(self.reader, self.lines), daemon=True).start()

    def stop(self, grace=TERMINATE_GRACE, stuck=False):
        """The worker drops the job when the connection closes; a stuck one (it stopped
        sending events) is killed, and the next run starts another."""
        self.close()
        if stuck:
            _kill([self.pid])

    def finish(self, done, error):
        self.close()
        if done is not None:
            return nst_protocol.EXIT_OK
        if error is not None:
            return nst_protocol.EXIT_CANCELLED if error.get('kind') == 'cancelled' \
                else nst_protocol.EXIT_FAILED
        return None                      # the worker died in the middle of the job

    def close(self):
        # shutdown first: it reaches the worker at once and wakes the reader thread, whose
        # readline holds the lock that closing the reader waits for
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        for thing in (self.reader, self.sock):
            try:
                thing.close()
            except OSError:
                pass


# ---------------------------------------------------------------- the warm worker

def state_dir():
    """The private folder of the user's warm workers (docs/protocol.md): created 0700; one
    that another user owns or others can enter is refused."""
    runtime = os.environ.get('XDG_RUNTIME_DIR')
    if runtime and os.path.isdir(runtime):
        path = os.path.join(runtime, 'neural-style')
    else:
        # not named like a job folder (JOB_PREFIX): the sweep of stale jobs must not see it
        path = os.path.join(tempfile.gettempdir(), 'nst-warm-%d' % os.getuid())
    if nst_protocol.private_folder(path):
        raise Failure('worker_folder', path=path)
    return path


def install_key(config):
    """Names the install a warm worker belongs to: the config file as install.py last wrote
    it (path, size, time) and the worker interpreter it names, and the keep-alive time."""
    try:
        info = os.stat(config['_path'])
        stamp = '%d:%d' % (info.st_size, info.st_mtime_ns)
    except (OSError, KeyError):
        stamp = ''
    text = '\0'.join([str(config.get('_path')), stamp, config['python'],
                      repr(config['keep_alive_seconds']), str(nst_protocol.PROTOCOL_VERSION)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def gimp_owner():
    """The GIMP this plug-in runs in (GIMP starts each plug-in as its child), for the warm
    worker, which ends once every GIMP it serves has ended (docs/protocol.md)."""
    return nst_protocol.process_owner(os.getppid())


def warm_possible(config):
    return bool(config.get('keep_alive_seconds')) and hasattr(socket, 'AF_UNIX') \
        and os.name == 'posix'


class WarmWorker:
    """Finds, checks, starts and replaces the user's warm worker for this install."""

    def __init__(self, config, hooks=Hooks()):
        self.config, self.hooks = config, hooks
        self.key = install_key(config)
        folder = state_dir()
        self.socket_path = os.path.join(folder, 'worker-%s.sock' % self.key)
        self.log_path = os.path.join(folder, 'worker-%s.log' % self.key)

    def connect(self, poll=lambda: None):
        """A Connection to an idle warm worker (started if need be), or None when it is busy
        with another job (then the caller starts a one-shot worker)."""
        deadline = time.monotonic() + BUSY_WAIT_SECONDS
        while True:
            try:
                sock, hello = self._dial()
            except (OSError, ValueError) as e:      # none there, dead, or not a worker
                self.hooks.log('warm worker: none usable at %s (%s)' % (self.socket_path,
                                                                        type(e).__name__))
                return self._start(poll)
            if not self._ours(hello):
                sock.close()
                self.hooks.log('warm worker: replacing pid %s (%r)' % (hello.get('pid'), hello))
                self._retire()
                return self._start(poll)
            if not hello.get('busy'):
                self.hooks.log('warm worker: reusing pid %d' % hello['pid'])
                return Connection(sock, hello, self.log_path)
            sock.close()
            if time.monotonic() > deadline:
                self.hooks.log('warm worker: busy, pid %d' % hello['pid'])
                return None
            poll()
            time.sleep(0.1)

    def _dial(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(HELLO_SECONDS)
            sock.connect(self.socket_path)
            line = b''
            while not line.endswith(b'\n'):
                chunk = sock.recv(4096)
                if not chunk:
                    raise ConnectionRefusedError('closed before its hello')
                line += chunk
            hello = nst_protocol.parse_hello(line)
            sock.settimeout(None)
            return sock, hello
        except BaseException:
            sock.close()
            raise

    def _ours(self, hello):
        return nst_protocol.is_our_hello(hello, self.key)

    def _retire(self):
        """Remove the socket file at our path (only a socket): the worker behind it, if any,
        notices and exits; a new one binds the path."""
        try:
            if stat.S_ISSOCK(os.lstat(self.socket_path).st_mode):
                os.unlink(self.socket_path)
        except OSError:
            pass

    def _start(self, poll):
        self._retire()
        with open(self.log_path, 'wb') as log:
            proc = _popen(self.config, ['serve', '--socket', self.socket_path, '--key',
                                        self.key, '--keep-alive',
                                        '%g' % self.config['keep_alive_seconds']],
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                          cwd=os.path.dirname(self.socket_path), start_new_session=True)
        self.hooks.log('warm worker: started pid %d' % proc.pid)
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                # it could not serve (its log says why): the one-shot worker reports the
                # problem, if it is one, in the user's terms
                self.hooks.log('warm worker: exited %s before listening: %s'
                               % (proc.returncode, tail(self.log_path, 3)))
                return None
            if os.path.exists(self.socket_path):
                try:
                    sock, hello = self._dial()
                except (OSError, ValueError):
                    sock = None
                if sock is not None:
                    if self._ours(hello) and not hello.get('busy'):
                        return Connection(sock, hello, self.log_path)
                    sock.close()
                    return None
            poll()
            time.sleep(0.05)
        proc.kill()
        return None


# ---------------------------------------------------------------- a worker over SSH

STRAY_LINES = 20                     # lines a remote shell may print before the hello
REMOTE_HELLO_SECONDS = 60.0          # ssh's connect (ConnectTimeout below) and a Python start
SSH_OPTIONS = ('-T', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=15',
               '-o', 'ServerAliveInterval=5', '-o', 'ServerAliveCountMax=3')


class RemoteSpec:
    """A worker named ssh://[user@]host[:port]/path/to/python: the remote engine's
    interpreter (docs/remote.md)."""

    def __init__(self, url):
        from urllib.parse import unquote, urlsplit
        self.url = url
        parts = urlsplit(url) if isinstance(url, str) else None
        try:
            port = parts and parts.port
        except ValueError:
            port = -1
        if not parts or parts.scheme != 'ssh' or not parts.hostname or port == -1 \
                or not parts.path.startswith('/') or parts.path == '/' \
                or parts.query or parts.fragment:
            raise Failure('remote_url', url=url)
        self.user = unquote(parts.username) if parts.username else None
        self.host = unquote(parts.hostname) if not parts.netloc.endswith(']') \
            else parts.hostname
        self.port = port
        self.python = unquote(parts.path)

    def login(self):
        """The words after `ssh` that reach this host by hand: ['-p', PORT, 'user@host']."""
        return (['-p', str(self.port)] if self.port else []) + \
            ['%s@%s' % (self.user, self.host) if self.user else self.host]

    @property
    def label(self):
        return self.host if self.port is None else '%s:%d' % (self.host, self.port)

    def argv(self, config, *args):
        """ssh's arguments to run `python -m nst_core ARGS` there: every part a separate
        argument here (no shell on this side), the remote command quoted for the POSIX
        shell sshd runs it with."""
        import shlex
        ssh = list(config.get('ssh_command') or ['ssh'])
        where = (['-p', str(self.port)] if self.port else []) + \
            (['-l', self.user] if self.user else [])
        command = ' '.join(shlex.quote(a) for a in (self.python, '-m', 'nst_core', *args))
        return ssh + list(SSH_OPTIONS) + where + ['--', self.host, command]


def ssh_refusal(said):
    """Which refusal a user can mend ssh's stderr shows: 'no_key' (no key login),
    'host_key_changed', 'host_key_unknown', or None; each client words it its own way."""
    if 'Permission denied' in said:
        return 'no_key'
    if 'IDENTIFICATION HAS CHANGED' in said:
        return 'host_key_changed'
    if 'Host key verification failed' in said:
        return 'host_key_unknown'
    return None


def remote_of(config):
    """The RemoteSpec of the config's "remote", or None when jobs run on this computer."""
    return RemoteSpec(config['remote']) if config.get('remote') else None


class Remote:
    """A job on a worker over SSH: ssh runs the remote end (`python -m nst_core remote`),
    which runs the job on the remote's warm worker (or a one-shot one) and streams back the
    events and the files the job writes, which land here in the job's folder under the same
    names. Closing ssh's stdin, or ssh dying with the plug-in, cancels the job there."""

    kind = 'remote'

    def __init__(self, config, job_path, poll=lambda: None, hooks=Hooks()):
        self.spec, self.hooks = remote_of(config), hooks
        self.folder = os.path.dirname(os.path.abspath(job_path))
        self.log_path = os.path.join(self.folder, 'ssh-stderr.txt')
        self.lines, self.hello = queue.Queue(), None
        argv = self.spec.argv(config, 'remote', '--keep-alive',
                              '%g' % config.get('keep_alive_seconds', 0))
        hooks.log('ssh: %r' % argv)
        with open(self.log_path, 'wb') as err:
            try:
                self.proc = subprocess.Popen(
                    argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                    cwd=self.folder, creationflags=getattr(subprocess, 'CREATE_NO_WINDOW', 0))
            except OSError as e:
                raise Failure('ssh_missing', ssh=argv[0], reason=str(e.strerror or e)) \
                    from None
        self.pid = self.proc.pid
        self.greeted = threading.Event()
        try:
            self._send(job_path)       # packed while ssh logs in, sent once the hello is ours
            try:
                self._greet(poll)
            finally:
                self.greeted.set()
        except BaseException:
            self.stop(0)
            raise
        threading.Thread(target=self._read, daemon=True).start()

    def _greet(self, poll):
        """Wait for the remote end's hello and check it is our engine, of our version."""
        deadline = time.monotonic() + REMOTE_HELLO_SECONDS
        first = queue.Queue()
        threading.Thread(target=self._first_line, args=(first,), daemon=True).start()
        while True:
            try:
                line = first.get(timeout=POLL_SECONDS)
                break
            except queue.Empty:
                poll()
                if time.monotonic() > deadline:
                    raise Failure('remote_silent', host=self.spec.label,
                                  seconds=REMOTE_HELLO_SECONDS, log_tail=tail(self.log_path))
        try:
            hello = nst_protocol.parse_hello(line)
        except ValueError:
            self._refused(line)
        if hello.get('protocol') != nst_protocol.PROTOCOL_VERSION \
                or hello.get('version') != nst_protocol.ENGINE_VERSION:
            raise Failure('remote_version', host=self.spec.label, found=hello.get('version'),
                          wanted=nst_protocol.ENGINE_VERSION)
        self.hello = hello
        self.hooks.log('remote: hello %r' % hello)

    def _first_line(self, into, skip=STRAY_LINES):
        """The hello line, past what a chatty shell start-up file printed before it."""
        for _ in range(skip):
            line = self.proc.stdout.readline()
            if not line or line.startswith(b'{'):
                break
            self.hooks.log('remote: before the hello: %r' % line[:200])
        into.put(line)

    def _refused(self, line):
        """No hello: ssh could not log in, or no engine answered there. Raises."""
        try:
            code = self.proc.wait(TERMINATE_GRACE)
        except subprocess.TimeoutExpired:
            code = None
        said = tail(self.log_path)
        if code == 255 or not line and code is None:
            raise Failure('ssh', host=self.spec.label, reason=said, code=code)
        # the remote shell ran, but not our engine: no interpreter there (127), no nst_core
        raise Failure('remote_engine', host=self.spec.label, python=self.spec.python,
                      reason=said or line.decode('utf-8', 'replace')[:200])

    def _send(self, job_path):
        """The request line and the files' bytes, in a thread: packing overlaps ssh's
        log-in, a large photo takes a while on a slow link, and the events may start before
        the last byte has gone."""
        with open(job_path, encoding='utf-8') as f:
            job = json.load(f)
        names = _buffer_names(job)
        trained = job['options'].get('trained_model')
        if trained:
            # the network travels as a file; the remote loads it as it would here
            # (weights_only), from the job's folder there
            names.append(('trained_model.pth', trained))
            job['options']['trained_model'] = 'trained_model.pth'
        job['options'].pop('cache_dir', None)        # the remote's own weights folder
        threading.Thread(target=self._write, args=(job, names), daemon=True).start()

    def _write(self, job, names):
        try:
            packed = []
            for item in names:
                name, path = item if isinstance(item, tuple) else (item, item)
                with open(os.path.join(self.folder, path), 'rb') as f:
                    packed.append((name,) + nst_protocol.pack(f.read()))
            head = nst_protocol.encode_stream_request(
                job, [(n, e, len(data)) for n, e, data in packed])
            self.greeted.wait()
            if self.hello is None:              # not our engine: it gets nothing
                return
            self.proc.stdin.write(head.encode())
            for _, _, data in packed:
                self.proc.stdin.write(data)
            self.proc.stdin.flush()
            self.hooks.log('remote: sent %d bytes' % (len(head) + sum(len(d) for *_, d in
                                                                       packed)))
        except (OSError, ValueError) as e:     # ssh gone: the reader sees the end
            self.hooks.log('remote: sending stopped: %s' % e)

    def _read(self):
        """Reader thread: events to self.lines; each announced file into the job's folder."""
        stream = self.proc.stdout
        try:
            for line in iter(stream.readline, b''):
                try:
                    event = nst_protocol.parse_event(line.decode('utf-8', 'replace'))
                except nst_protocol.ProtocolError:
                    self.lines.put(line)              # follow() reports it
                    continue
                if event['event'] == 'file':
                    self._receive(stream, event)
                else:
                    self.lines.put(line)
        except (OSError, ValueError, nst_protocol.ProtocolError) as e:
            self.hooks.log('remote: reading stopped: %s' % e)
        self.lines.put(None)

    def _receive(self, stream, event):
        start = time.monotonic()
        name, encoding, nbytes = nst_protocol.parse_file_header(event)
        data = nst_protocol.unpack(encoding, nst_protocol.read_exact(stream, nbytes))
        nst_protocol.write_buffer_atomic(os.path.join(self.folder, name), data)
        # what travelled, for the hook log and bench/bench_remote.py
        self.hooks.log('remote: received %s: %d bytes %s, %d unpacked, in %.3f s' % (
            name, nbytes, encoding, len(data), time.monotonic() - start))

    def stop(self, grace=TERMINATE_GRACE, stuck=False):
        """End-of-file on its stdin cancels the job there; ssh itself goes after `grace`."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def finish(self, done, error):
        code = self.proc.wait()
        if done is None and error is None:
            # the connection, or the remote end, went in the middle of the job
            raise Failure('remote_lost', host=self.spec.label, code=code,
                          log_tail=tail(self.log_path))
        return code


def open_channel(config, job_path, poll=lambda: None, hooks=Hooks(), owner=None):
    """The job sent to the remote worker, or the warm worker's connection with the job sent,
    or a one-shot worker. owner: see Connection.send_job."""
    if config.get('remote'):
        return Remote(config, job_path, poll, hooks)
    if warm_possible(config):
        connection = WarmWorker(config, hooks).connect(poll)
        if connection is not None:
            connection.send_job(job_path, owner)
            return connection
    return Pipe(config, job_path)


# ---------------------------------------------------------------- following a job

class Watchdog:
    """The config's time limits ("stall_seconds", "time_limit_seconds"; 0 = none)."""

    def __init__(self, config):
        self.stall, self.limit = config['stall_seconds'], config['time_limit_seconds']
        self.path = config['_path']
        self.start = self.last = time.monotonic()

    def heard(self):
        self.last = time.monotonic()

    def overrun(self):
        """None while within the limits, else the limit passed: ('stalled' | 'time_limit',
        its seconds)."""
        now = time.monotonic()
        if self.stall and now - self.last > self.stall:
            return 'stalled', self.stall
        if self.limit and now - self.start > self.limit:
            return 'time_limit', self.limit
        return None


class Handler:
    """What a caller does with the events; these do nothing. progress() returns True to
    cancel the job."""

    def started(self, event):
        """The worker has started the job: it loads the model now."""

    def text(self, message):
        """A line of the worker's log (in the worker's words)."""

    def progress(self, event):
        return False

    def preview(self, event):
        pass


def follow(channel, config, handler=Handler(), poll=lambda: None, hooks=Hooks()):
    """Follow a job to its end: the worker's log lines on success; raise WorkerFailed,
    Cancelled, Failure (a time limit), or what poll() raises (the job is then stopped at
    once)."""
    watch = Watchdog(config)
    done, error, logs, count = None, None, [], 0
    try:
        while True:
            try:
                line = channel.lines.get(timeout=POLL_SECONDS)
            except queue.Empty:
                line = b''                     # nothing yet
            poll()
            overrun = watch.overrun()          # also while events pour in
            if overrun:
                hooks.log('time limit: %s %g s' % overrun)
                channel.stop(stuck=True)
                raise Failure(overrun[0], seconds=overrun[1], config=watch.path,
                              log_tail=tail(channel.log_path))
            if line is None:
                break
            if not line:
                continue
            try:
                event = nst_protocol.parse_event(line.decode('utf-8', 'replace'))
            except nst_protocol.ProtocolError as e:
                error = {'kind': 'internal', 'message': str(e)}
                continue
            watch.heard()                      # an event, not just any output
            kind = event['event']
            count += kind == 'progress'
            hooks.kill('progress %d' % count if kind == 'progress' else kind)
            if kind == 'progress' and handler.progress(event):
                hooks.log('cancel requested')
                raise Cancelled()
            elif kind == 'start':
                handler.started(event)
            elif kind == 'log' and isinstance(event.get('message'), str):
                logs.append(event['message'])
                handler.text(event['message'])
            elif kind == 'preview':
                handler.preview(event)
            elif kind == 'done':
                done = event
            elif kind == 'error':
                error = event
        code = channel.finish(done, error)
    except BaseException as e:
        # nobody waits for a run whose image is gone: no grace for its worker
        channel.stop(TERMINATE_GRACE if isinstance(e, (Cancelled, Failure)) else 0)
        hooks.log('worker stopped')
        raise
    hooks.log('worker exit %s' % code)
    if code == 0 and done is not None:
        hooks.kill('writing-back')
        return logs
    if code == nst_protocol.EXIT_CANCELLED or (error or {}).get('kind') == 'cancelled':
        raise Cancelled()
    raise WorkerFailed(code, error, channel.log_path)


def run_job(config, job_path, handler=Handler(), poll=lambda: None, hooks=Hooks()):
    """Run one job to its end on the warm worker, or a one-shot one (see follow())."""
    channel = open_channel(config, job_path, poll, hooks)
    hooks.log('worker-pid %d %s' % (channel.pid, channel.kind))
    hooks.kill('worker-started')
    return follow(channel, config, handler, poll, hooks)
