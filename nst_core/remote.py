"""`stylize` and `batch` from a shell on a remote engine: `--remote ssh://[user@]host/python`.

Each picture is one job of the worker protocol sent through nst_client's Remote channel, the
GIMP plug-in's own client (docs/remote.md): ssh runs `python -m nst_core remote` there, which
runs the job on that machine's warm worker, kept loaded between the photos of a batch and
between commands for KEEP_ALIVE seconds.

The content travels at the size the work is done at: resized here as stylize() resizes it
(imageio.resize of its RGB), so the result comes back at the size a local run writes (the
worker returns a result at the size of the content it was sent), and `--size 1024` on a 24 MP
photo sends 1024 px, not 24 MP. Only Quality's layout then starts from that resized picture
rather than the original (a level or so of difference where --size is not the content's own
size); at the content's own size the picture is the local one.

A batch over several remotes is a queue of our own with one thread per host pulling from it,
as GNU parallel's --sshlogin: Dask's SSHCluster and Ray would put their own servers, ports and
authentication on both machines, which the worker over SSH exists to avoid, for what is here a
deque and a condition variable. A host that fails (ssh, the connection, its engine) gives its
photo back to the queue and is not used again; a photo that fails on its own is reported and
not retried.
"""
import os
import sys
import threading
import time
from collections import deque
from pathlib import Path

import nst_client
import nst_protocol

from . import batch
from .progress import Progress

KEEP_ALIVE = nst_protocol.TIME_LIMITS['keep_alive_seconds']
HOST_KINDS = ('remote_lost', 'remote_silent', 'ssh', 'ssh_missing', 'remote_engine',
              'remote_version', 'stalled', 'time_limit', 'buffer_missing', 'buffer_size')


class RemoteError(Exception):
    """A picture the remote host did not paint: `kind` one of the protocol's error kinds,
    `message` in the shell's words, `fields` the host and the error event's other fields (for
    a program that calls this); host_lost when the host itself failed (a batch then gives the
    photo to another host)."""

    def __init__(self, kind, message, host_lost=False, **fields):
        super().__init__(message)
        self.kind, self.message, self.host_lost, self.fields = kind, message, host_lost, fields


def _last_line(text):
    lines = [line.strip() for line in (text or '').splitlines() if line.strip()]
    return lines[-1] if lines else ''


def _login(spec):
    return ' '.join(spec.login())


def _ssh_words(spec, fields):
    """ssh's own refusal, with what to do about it."""
    said = _last_line(fields.get('reason')) or 'ssh exited with status %s' % fields.get('code')
    refusal = nst_client.ssh_refusal(fields.get('reason') or '')
    if refusal == 'no_key':
        return ('ssh could not log in: %s Set up key login (ssh runs without password '
                'prompts here): ssh-copy-id %s' % (said.split(': ', 1)[-1], _login(spec)))
    if refusal == 'host_key_changed':
        return ('ssh refused the host key: it has changed since the last log-in (a '
                'reinstalled machine, or someone in between). Ask its owner; only if that '
                'is expected: ssh-keygen -R %s' % ('[%s]:%d' % (spec.host, spec.port)
                                                   if spec.port else spec.host))
    if refusal == 'host_key_unknown' or 'host key' in said.lower():
        return ('ssh refused the host key: %s Check it, then log in once by hand to accept '
                'it: ssh %s' % (said, _login(spec)))
    return 'ssh could not connect: %s' % said


def words(failure, spec=None):
    """One line for the shell saying what went wrong with a remote run and what to do,
    naming the host (the plug-in words these kinds in its messages.py)."""
    f, kind = failure.fields, failure.kind
    host = f.get('host') or (spec.label if spec else '')
    tail = _last_line(f.get('log_tail'))
    tail = ' (%s)' % tail if tail else ''
    if kind == 'remote_url':
        return ('%r is no remote worker: write ssh://[user@]host[:port]/path/to/python (the '
                "remote engine's interpreter)" % (f.get('url'),))
    if kind == 'ssh_missing':
        return ('cannot run %s (%s): install the OpenSSH client, or name yours with '
                '--ssh-command' % (f.get('ssh'), f.get('reason')))
    if kind == 'ssh' and spec is not None:
        return '%s: %s' % (host, _ssh_words(spec, f))
    if kind == 'remote_engine':
        return ('%s: no nst_core engine answered at %s (%s). Install it there, in the '
                'Neural Style folder: %s' % (host, f.get('python'),
                                             _last_line(f.get('reason')) or 'no answer',
                                             nst_protocol.WORKER_ONLY))
    if kind == 'remote_version':
        return ('%s: the engine there is nst_core %s, this one is %s. Update it there, in the '
                'Neural Style folder: %s' % (host, f.get('found'), f.get('wanted'),
                                             nst_protocol.WORKER_ONLY))
    if kind == 'remote_silent':
        return '%s: no answer within %g s%s' % (host, f.get('seconds'), tail)
    if kind == 'remote_lost':
        return '%s: the connection was lost in the middle of the job%s' % (host, tail)
    if kind == 'stalled':
        return '%s: no progress for %g s, the job was stopped%s' % (host, f.get('seconds'), tail)
    if kind in ('buffer_missing', 'buffer_size'):
        return '%s: the result did not arrive whole (%s)' % (host, failure)
    return '%s: %s' % (host, failure)


class _Events(nst_client.Handler):
    """The worker's events to the callback and log stylize() takes."""

    def __init__(self, callback, log):
        self.callback, self.log = callback, log

    def text(self, message):
        if self.log:
            self.log(message)

    def progress(self, event):
        if self.callback:
            def number(name, kind=float, default=0):
                value = event.get(name)
                return kind(value) if isinstance(value, (int, float)) \
                    and not isinstance(value, bool) else default
            self.callback(Progress(str(event.get('stage', '')), number('step', int),
                                   number('total', int), number('fraction'),
                                   number('elapsed'), number('eta', default=None),
                                   number('loss', default=None)))
        return False


class Host:
    """A remote engine named by its ssh:// URL; stylize() runs a picture there."""

    def __init__(self, url, ssh_command=None, keep_alive=KEEP_ALIVE):
        try:
            self.spec = nst_client.RemoteSpec(url)
        except nst_client.Failure as f:
            raise RemoteError('bad_input', words(f)) from None
        self.label = self.spec.label
        # the worker client's settings; "_path" only names the run in its time-limit failures
        self.config = dict(nst_protocol.TIME_LIMITS, remote=url, keep_alive_seconds=keep_alive,
                           python=sys.executable, _path='--remote %s' % url)
        if ssh_command:
            self.config['ssh_command'] = list(ssh_command)

    def stylize(self, content, styles, *, style_weights=None, style_masks=None,
                painting_masks=None, callback=None, log=None, cancel=None, **options):
        """stylize(content, styles, **options) on this host: the same picture back (RGB, at
        the working size). cancel: an Event; once set, the job stops (nst_client.Cancelled).
        Masks are checked here as stylize() checks them (before ssh is started), and the
        style masks travel at the working size, as the content does."""
        from .imageio import resize, rgb, working_size
        _check_masks(content, styles, style_masks, painting_masks, options)
        content = rgb(content)
        content = resize(content, working_size(content.size, options.get('size') or 0))
        content = content.convert('RGBA')
        job_options = _job_options(options)

        def poll():
            if cancel is not None and cancel.is_set():
                raise nst_client.Cancelled()
        with nst_client.JobFolder(self.config) as folder:
            sent = folder.buffer('content.rgba', *content.size, content.tobytes())
            painting = [folder.buffer('style%d.rgba' % i, *s.size, rgb(s).convert('RGBA')
                                      .tobytes(), w)
                        for i, (s, w) in enumerate(zip(styles, style_weights
                                                       or [1.0] * len(styles)))]
            for i, (buf, mask) in enumerate(zip(painting, painting_masks or ())):
                if mask is not None:
                    buf.painting_mask = folder.mask('painting_mask%d.grey' % i, *mask.size,
                                                    _mask_bytes(mask, mask.size))
            masks = [m if m is None or m == nst_protocol.REST else
                     folder.mask('style_mask%d.grey' % i, *content.size,
                                 _mask_bytes(m, content.size))
                     for i, m in enumerate(style_masks or ())]
            job = folder.write_job(sent, painting, job_options, masks or None)
            try:
                nst_client.run_job(self.config, job, _Events(callback, log), poll)
                data = folder.read('result.rgba', *content.size)
            except nst_client.WorkerFailed as e:
                raise self._worker_failed(e) from None
            except nst_client.Failure as f:
                raise RemoteError('device', words(f, self.spec), host_lost=f.kind in HOST_KINDS,
                                  host=self.label) from None
        from PIL import Image
        return Image.frombytes('RGBA', content.size, data).convert('RGB')

    def there(self, args):
        """The command line that runs `python -m nst_core ARGS` on this host, to paste."""
        import shlex
        spec = self.spec
        ssh = list(self.config.get('ssh_command') or ['ssh']) + spec.login()
        return shlex.join(ssh + [shlex.join([spec.python, '-m', 'nst_core', *map(str, args)])])

    def _worker_failed(self, e):
        if e.error is None:                  # the worker there died without a word
            return RemoteError('device', '%s: the engine stopped in the middle of the job '
                               '(exit status %s)' % (self.label, e.code), host_lost=True,
                               host=self.label)
        kind, message = str(e.error.get('kind')), str(e.error.get('message'))
        command = e.error.get('command')
        if kind == 'weights' and isinstance(command, list):
            # the repair is to be run there, with that engine: through ssh
            message = '%s: %s; run `%s`%s' % (self.label, e.error.get('reason'),
                                              self.there(command), e.error.get('after', ''))
        elif kind not in ('bad_input', 'bad_job', 'cancelled'):
            # what depends on the machine (its devices, memory, weights, a bug there) names
            # it: "not available here" means there, and a repair command is to be run there
            message = '%s: %s' % (self.label, message)
        fields = {k: v for k, v in e.error.items() if k not in ('event', 'kind', 'message')}
        return RemoteError(kind, message, host=self.label, **fields)


def _check_masks(content, styles, style_masks, painting_masks, options):
    """The engine's MaskError for masks it would refuse, here: a bad mask costs no ssh."""
    from .api import _validate_masks, options as defaults
    _validate_masks(content, styles, dict(
        method=options.get('method', defaults()['method'].default),
        style_masks=style_masks, painting_masks=painting_masks))


def _mask_bytes(mask, wh):
    """A mask as the protocol's one byte a pixel at wh (w, h), brought there as the engine
    brings a mask to its working size (regions.to_tensor: area means, bilinear enlarged)."""
    import numpy as np
    from . import regions
    share = regions.to_tensor(mask, wh, 'cpu')[0, 0].numpy()
    return (np.clip(share, 0, 1) * 255 + 0.5).astype(np.uint8).tobytes()


def _job_options(options):
    """stylize()'s keyword options as a job's: the remote's own weights folder, and a trained
    network sent as a file (nst_client sends the file a job names)."""
    job = {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()
           if k != 'cache_dir'}
    if job.get('trained_model'):
        path = os.path.abspath(job['trained_model'])
        if not os.path.isfile(path):
            raise ValueError('%s: no such file' % job['trained_model'])
        job['trained_model'] = path
    return job


# ---------------------------------------------------------------- batch

class SharedProgress(batch.BatchProgress):
    """One bar for photos painted at once on several hosts: the photos finished and the
    fractions of those in flight add up."""

    def __init__(self, count, callback, clock=time.monotonic):
        super().__init__(count, callback, clock)
        self.finished, self.flight, self.lock = 0, {}, threading.Lock()

    def photo(self, index, name, host=None):
        def report(p):
            with self.lock:
                self.flight[index] = p.fraction
                fraction = min(1.0, (self.finished + sum(self.flight.values())) / self.count)
                elapsed = self.clock() - self.start
                eta = elapsed * (1 - fraction) / fraction if fraction > 0 else None
                self.callback(Progress('%d/%d %s on %s: %s' % (index + 1, self.count, name,
                                                              host, p.stage),
                                       p.step, p.total, fraction, elapsed, eta, p.loss))
        return report if self.callback else None

    def end(self, index, finished=True):
        """The photo is done with (finished), or given back to the queue."""
        with self.lock:
            self.flight.pop(index, None)
            self.finished += finished


def stylize_all(inputs, styles, out_dir, options, hosts, *, fmt='png', callback=None,
                say=None, warn=None, check=None):
    """batch.stylize_all on the remote `hosts` (Host objects): their photos spread over them;
    returns a batch.Summary. Each result is saved under a temporary name and renamed, so the
    folder never holds half a picture. check: as batch.stylize_all's, before a photo is
    sent."""
    from .imageio import rgb
    say, warn = say or batch._log.info, warn or batch._log.warning
    out_dir = Path(out_dir)
    pairs = batch.targets(batch.sources(inputs), out_dir, fmt)
    batch.prepare_folder(out_dir)
    # read here, once: the hosts' threads share them, and PIL reads a lazily opened picture's
    # file in whichever thread first asks for its pixels, not safely in two at once
    styles = [rgb(s) for s in styles]
    return _Spread(pairs, hosts, styles, options, callback, say, warn, check).run()


class _Spread:
    """The queue of photos and the hosts' threads pulling from it."""

    def __init__(self, pairs, hosts, styles, options, callback, say, warn, check=None):
        self.hosts, self.styles, self.options, self.check = hosts, styles, options, check
        self.say, self.warn = say, warn
        self.todo = deque(enumerate(pairs))
        self.left, self.live = len(pairs), len(hosts)      # photos not done; hosts not gone
        self.cond, self.stop = threading.Condition(), threading.Event()
        self.progress = SharedProgress(len(pairs), callback)
        self.summary = batch.Summary()

    def run(self):
        threads = [threading.Thread(target=self._serve, args=(host,), daemon=True,
                                    name='remote %s' % host.label) for host in self.hosts]
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                while thread.is_alive():
                    thread.join(0.2)           # a bare join() would hold off Ctrl+C
        except KeyboardInterrupt:
            self.stop.set()                    # each job stops; its thread ends
            with self.cond:
                self.cond.notify_all()
            for thread in threads:
                thread.join(nst_client.TERMINATE_GRACE + 1)
            raise
        return self.summary

    def _next(self):
        """The next photo for a host, waiting while photos are in flight elsewhere (one may
        come back); None when all are done."""
        with self.cond:
            while not self.todo and self.left and not self.stop.is_set():
                self.cond.wait()
            return self.todo.popleft() if self.todo and not self.stop.is_set() else None

    def _serve(self, host):
        from .errors import classify
        from .imageio import open_image
        while True:
            item = self._next()
            if item is None:
                return
            index, (photo, out) = item
            try:
                content = open_image(photo)
                if self.check is not None:
                    self.check(photo, content)
                image = host.stylize(content, self.styles, cancel=self.stop,
                                     callback=self.progress.photo(index, photo.name,
                                                                  host.label),
                                     log=lambda text: self.say('%s: %s' % (host.label, text)),
                                     **self.options)
            except RemoteError as e:
                if self.stop.is_set():
                    return
                if e.host_lost:
                    return self._drop(host, item, e.message)
                self._end(index, photo, error=e.message)
                continue
            except nst_client.Cancelled:
                if self.stop.is_set():
                    return
                return self._drop(host, item, '%s: the job there was cancelled' % host.label)
            except Exception as e:  # noqa: BLE001 - one line for this photo, then the next
                self._end(index, photo, error=classify(e)[1])
                continue
            try:
                _save_atomic(image, out)
            except (OSError, ValueError) as e:
                self._end(index, photo, error='cannot write the result: %s' % e)
            else:
                self._end(index, photo, written=out, line='wrote %s (%dx%d) on %s'
                          % (out, *image.size, host.label))

    def _end(self, index, photo, error=None, written=None, line=None):
        with self.cond:
            self.progress.end(index)
            if error is not None:
                batch._failed(self.summary, photo, error, self.warn)
            else:
                self.summary.written.append(written)
                self.say(line)
            self.left -= 1
            self.cond.notify_all()

    def _drop(self, host, item, why):
        """The host failed: its photo back to the queue, the host not used again; with no
        host left, the photos not done are failed."""
        index, (photo, _) = item
        with self.cond:
            self.progress.end(index, finished=False)
            self.todo.appendleft(item)
            self.live -= 1
            if self.live:
                self.warn('%s; %s goes to the other hosts and %s is not used again'
                          % (why, photo.name, host.label))
            else:
                self.warn('%s; no host is left for the %d photos not painted'
                          % (why, len(self.todo)))
                while self.todo:
                    _, (lost, _) = self.todo.popleft()
                    self.summary.failed.append((lost, '%s: not painted: no host left' % lost))
                    self.left -= 1
            self.cond.notify_all()


def _save_atomic(image, path):
    """Save under a hidden temporary name in the folder, then rename: a reader (or a run that
    is killed) never finds half a picture under the photo's name."""
    from PIL import Image
    tmp = path.with_name('.%s.%d-%d.part' % (path.name, os.getpid(), threading.get_ident()))
    extra = {'compress_level': batch.PNG_LEVEL} if path.suffix == '.png' else {}
    try:
        image.save(tmp, format=Image.registered_extensions()[path.suffix.lower()], **extra)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
