"""`python -m nst_core serve`: the warm worker (docs/protocol.md, "The warm worker").

One process keeps torch and the networks loaded and runs jobs sent over a Unix socket, one
at a time, with the very code of the one-shot worker (worker.execute_job). Threads:

- the main thread runs the jobs (torch, signal handlers) and, between them, every half
  second checks whether it should end: idle too long, its socket file gone or replaced;
- an accept thread greets every connection with the hello at once, so that a client never
  waits behind a running job: busy, it closes; otherwise the connection goes to the main
  thread;
- while a job runs, a watcher reads its connection: end-of-file (the client closed it or
  died), an error or any further bytes cancel the job.

It serves the GIMPs whose plug-ins sent it jobs (each request names its GIMP, "owner"): once
every one of them has ended it ends too, rather than holding torch's memory for the rest of
its keep-alive time. Its temporary files (torch writes some when it is imported) live in a
folder of its own beside the socket, removed when it ends; one left by a killed worker is
removed by the next worker that starts.

A step cannot be interrupted, so a cancelled job that has not returned within a second ends
the process (os._exit), as the one-shot worker does: the plug-in's next run starts another.
"""
import errno
import gc
import os
import queue
import shutil
import signal
import socket
import stat
import sys
import tempfile
import threading
import time
import traceback

import nst_protocol as protocol

CANCEL_GRACE = 1.0      # s a cancelled job may take to return before the process ends
POLL = 0.5              # s between the main thread's checks of its socket file and idleness
LINE_TIMEOUT = 30.0     # s a client may take to send its one line after the hello
SEND_TIMEOUT = 60.0     # s an event may wait for a client that does not read
MAX_LINE = 64 * 1024


class StartError(Exception):
    """The server cannot start: one line for stderr, exit 2."""


def main(path, key, keep_alive):
    _quiet_stdout()
    folder = os.path.dirname(os.path.abspath(path))
    try:
        _check_folder(folder)
        listener, ident = _bind(path)
    except StartError as e:
        print('nst_core serve: %s' % e, file=sys.stderr, flush=True)
        return 2
    server = Server(listener, path, ident, key, keep_alive)
    server.tmp = _private_tmp(folder)
    try:
        code = server.serve()
    finally:
        server.remove_socket()
        server.remove_tmp()
    # torch's teardown takes a second or more and nothing needs it: the socket is gone,
    # the log flushed
    sys.stderr.flush()
    os._exit(code)


def _quiet_stdout():
    """stdout is /dev/null as the plug-in starts us; stray prints from libraries go to the
    log instead (fd 1 is pointed at stderr), and events never go near either."""
    os.dup2(2, 1)
    sys.stdout = sys.stderr


def _check_folder(folder):
    """The socket's folder must be private: anyone who can enter it could ask for jobs."""
    problem = protocol.private_folder(folder, create=False)
    if problem:
        raise StartError('socket folder %s %s' % (folder, problem))


TMP_PREFIX = 'tmp-'


def _private_tmp(folder):
    """A temporary folder for this process (tempfile's and its children's, TMPDIR) in the
    socket's private folder, before torch is imported: torch 2.6 writes a module into a
    folder of its own there at import and removes it only at a normal interpreter exit,
    which this server never has (os._exit), let alone when it is killed. Those of workers
    that are gone are removed here."""
    try:
        names = os.listdir(folder)
    except OSError:
        names = []
    for name in names:
        pid = name[len(TMP_PREFIX):].split('-', 1)[0]
        if name.startswith(TMP_PREFIX) and pid.isdigit() \
                and not protocol.owner_alive({'pid': int(pid)}):
            shutil.rmtree(os.path.join(folder, name), ignore_errors=True)
    try:
        path = tempfile.mkdtemp(prefix='%s%d-' % (TMP_PREFIX, os.getpid()), dir=folder)
    except OSError as e:
        log('no private temporary folder in %s (%s): using %s' % (folder, e,
                                                                 tempfile.gettempdir()))
        return None
    os.environ['TMPDIR'] = tempfile.tempdir = path
    return path


def _bind(path):
    """(listening socket, (st_dev, st_ino) of the socket file it made)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise StartError('%s: %s' % (path, e.strerror)) from None
    if st is not None:
        if not stat.S_ISSOCK(st.st_mode):
            raise StartError('%s exists and is not a socket; not touching it' % path)
        if _answers(path):
            raise StartError('another worker serves %s' % path)
        try:
            os.unlink(path)      # a dead worker's socket file
        except FileNotFoundError:
            pass
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(path)
    except OSError as e:
        listener.close()
        if e.errno == errno.EADDRINUSE:      # another worker bound it in the meantime
            raise StartError('another worker serves %s' % path) from None
        raise StartError('cannot bind %s: %s' % (path, e.strerror or e)) from None
    os.chmod(path, 0o600)
    st = os.lstat(path)
    listener.listen(8)
    return listener, (st.st_dev, st.st_ino)


def _answers(path):
    """Whether a process accepts connections at `path` (a refused or failed connect: no)."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        return False
    except OSError:
        return True              # e.g. a full backlog: someone is there
    finally:
        probe.close()
    return True


def log(message):
    sys.stderr.write('%s nst_core serve[%d]: %s\n' % (time.strftime('%Y-%m-%d %H:%M:%S'),
                                                      os.getpid(), message))
    sys.stderr.flush()


class Server:
    def __init__(self, listener, path, ident, key, keep_alive):
        self.listener, self.path, self.ident = listener, path, ident
        self.key, self.keep_alive = key, keep_alive
        self.lock = threading.Lock()     # busy, closing, last_active
        self.busy = False                # a connection is with the main thread
        self.closing = False             # no more connections: the server is ending
        self.last_active = time.monotonic()
        self.connections = queue.Queue()
        self.stop = None                 # why a signal asked us to end
        self.cancel = None               # the running job's Cancellation
        self.owners = []                 # the GIMPs it serves (main thread only)
        self.tmp = None                  # its private temporary folder (_private_tmp)
        from .loaded import LoadedModels
        self.models = LoadedModels()     # the networks its jobs loaded, for the next job

    # --- the main thread ------------------------------------------------------------------

    def serve(self):
        self._catch_signals()
        log('serving %s (key %s, keep-alive %g s)' % (self.path, self.key, self.keep_alive))
        threading.Thread(target=self._accept_loop, daemon=True).start()
        while True:
            try:
                conn = self.connections.get(timeout=POLL)
            except queue.Empty:
                conn = None
            if conn is not None:
                self._serve_connection(conn)
            reason = self._why_end()
            if reason:
                log('exiting: %s' % reason)
                return 0

    def _catch_signals(self):
        """SIGTERM and SIGINT cancel the job and end the server. Python runs a handler only
        when the main thread is back in the interpreter, which a long step delays; the C
        handler's wakeup byte reaches a thread at once."""
        read_end, write_end = os.pipe()
        os.set_blocking(write_end, False)
        signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: None)
        threading.Thread(target=self._signal_loop, args=(read_end,), daemon=True).start()

    def _signal_loop(self, fd):
        while True:
            for signum in os.read(fd, 64):
                if signum in (signal.SIGTERM, signal.SIGINT):
                    self.stop = signal.Signals(signum).name
                    cancel = self.cancel
                    if cancel is not None:
                        cancel.set()
                    self.connections.put(None)      # wake the main thread

    def _why_end(self):
        with self.lock:
            if self.busy:
                return None
            reason = self.stop and 'got %s' % self.stop
            if not reason and not self.owns_socket():
                reason = 'socket file %s removed or replaced' % self.path
            if not reason and time.monotonic() - self.last_active > self.keep_alive:
                reason = 'idle for %g s' % self.keep_alive
            if not reason and self.owners:
                gone = [o for o in self.owners if not protocol.owner_alive(o)]
                self.owners = [o for o in self.owners if o not in gone]
                if not self.owners:
                    reason = 'the GIMP it served has ended (pid %s)' % ', '.join(
                        str(o['pid']) for o in gone)
            self.closing = bool(reason)
            return reason

    def _serve_connection(self, conn):
        try:
            request = _read_line(conn, lambda: self.stop is not None)
            if request is not None:
                self._answer(conn, *request)
        except Exception:  # noqa: BLE001 - one connection's trouble must not end the server
            log('serving a connection failed: %s' % traceback.format_exc())
        finally:
            # free before the client sees the end: its next run may connect at once, and
            # must hear busy:false (it then waits in the queue while memory is freed)
            with self.lock:
                self.busy = False
                self.last_active = time.monotonic()
            _close(conn)
            _free_memory()

    def _answer(self, conn, line, extra):
        job, owner, bye = protocol.parse_request(line)
        self._note_owner(owner)
        if bye:
            return
        if job is None:
            _send(conn, protocol.encode_event(
                'error', kind='bad_job', message='expected {"job": "/absolute/path/job.json"} '
                'or {"bye": true}, not %r' % line[:200]))
            log('refused a request that is not a job: %r' % line[:200])
            return
        self._run_job(conn, job, extra)

    def _note_owner(self, owner):
        """The GIMP a request comes from ({"pid": N, "start": T}, protocol.process_owner);
        one that has already ended, or none, adds nothing."""
        if not isinstance(owner, dict) or not isinstance(owner.get('pid'), int) \
                or isinstance(owner.get('pid'), bool):
            return
        owner = {'pid': owner['pid'], 'start': owner.get('start')
                 if isinstance(owner.get('start'), int) else None}
        if owner not in self.owners and protocol.owner_alive(owner):
            self.owners.append(owner)
            log('serving the GIMP with pid %d' % owner['pid'])

    def _run_job(self, conn, job_path, extra):
        from .reporting import Reporter
        from .worker import Cancellation, execute_job
        cancel = Cancellation(self._give_up, grace=CANCEL_GRACE)
        self.cancel = cancel
        if extra or self.stop is not None:
            cancel.set()               # further bytes after the job line, or a signal
        reporter = Reporter(json_events=True, events=_Channel(conn, cancel.set))
        watcher = threading.Thread(target=_watch, args=(conn, cancel), daemon=True)
        watcher.start()
        t0 = time.monotonic()
        try:
            code = execute_job(job_path, reporter, cancel, self.models)
        finally:
            cancel.finish()
            self.cancel = None
        log('job %s: %s in %.1f s' % (job_path, OUTCOMES.get(code, code),
                                      time.monotonic() - t0))

    def _give_up(self):
        """A cancelled job did not return in time: end here (its step cannot be stopped)."""
        log('a cancelled job did not stop within %g s: exiting' % CANCEL_GRACE)
        self.remove_socket()
        self.remove_tmp()
        os._exit(protocol.EXIT_CANCELLED)

    # --- the socket file ------------------------------------------------------------------

    def owns_socket(self):
        try:
            st = os.lstat(self.path)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == self.ident

    def remove_tmp(self):
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def remove_socket(self):
        with self.lock:
            self.closing = True
        # a file another worker put there in the meantime is its own: leave it
        if self.owns_socket():
            try:
                os.unlink(self.path)
            except OSError:
                pass

    # --- the accept thread ----------------------------------------------------------------

    def _accept_loop(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                time.sleep(0.1)        # e.g. out of file descriptors: try again
                continue
            self._greet(conn)

    def _greet(self, conn):
        with self.lock:
            if self.closing:
                conn.close()           # the client sees no hello and starts its own worker
                return
            busy = self.busy
            self.busy = True
        conn.settimeout(SEND_TIMEOUT)
        from . import __version__
        sent = _send(conn, protocol.encode_hello(__version__, self.key, os.getpid(), busy))
        if busy or not sent:
            _close(conn)
            if not busy:
                with self.lock:
                    self.busy = False
            return
        self.connections.put(conn)


OUTCOMES = {protocol.EXIT_OK: 'done', protocol.EXIT_FAILED: 'failed',
            protocol.EXIT_BAD_JOB: 'bad job', protocol.EXIT_CANCELLED: 'cancelled'}


class _Channel:
    """The connection as the Reporter's text file. A client gone (broken pipe, reset, not
    reading for SEND_TIMEOUT) cancels the job; nothing is raised into it."""

    def __init__(self, conn, on_gone):
        self.conn, self.on_gone, self.gone = conn, on_gone, False

    def write(self, text):
        if not self.gone and not _send(self.conn, text, newline=False):
            self.gone = True
            self.on_gone()
        return len(text)

    def flush(self):
        pass


def _send(conn, text, newline=True):
    try:
        conn.sendall((text + ('\n' if newline else '')).encode('utf-8'))
        return True
    except OSError:
        return False


def _read_line(conn, stopping):
    """(the client's line, whether bytes followed it), or None: it closed, said nothing for
    LINE_TIMEOUT, sent a line too long to be a request, or stopping() became true."""
    conn.settimeout(POLL)
    data, deadline = b'', time.monotonic() + LINE_TIMEOUT
    try:
        while b'\n' not in data:
            if stopping() or time.monotonic() > deadline or len(data) > MAX_LINE:
                return None
            try:
                chunk = conn.recv(4096)
            except socket.timeout:
                continue
            if not chunk:
                return None
            data += chunk
    except OSError:
        return None
    finally:
        conn.settimeout(SEND_TIMEOUT)
    line, _, extra = data.partition(b'\n')
    return line.decode('utf-8', 'replace'), bool(extra)


def _watch(conn, cancel):
    """Until the connection ends: end-of-file, an error or any byte cancel the job (a
    cancel after the job returned does nothing)."""
    while True:
        try:
            conn.recv(1)
        except socket.timeout:
            continue
        except OSError:
            pass
        cancel.set()
        return


def _close(conn):
    try:
        conn.shutdown(socket.SHUT_RDWR)     # wakes the watcher's recv
    except OSError:
        pass
    conn.close()


def _free_memory():
    """What a finished job leaves is garbage; give it back before the next one."""
    gc.collect()
    torch = sys.modules.get('torch')
    if torch is not None and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
