"""`python -m nst_core remote`: the remote end of a job over SSH (docs/remote.md).

ssh starts it on the GPU box for one job; its stdin and stdout are the SSH channel. It greets
with a hello (no torch: that costs seconds), reads the request line and the files after it
(docs/protocol.md, "Over SSH") into a private job folder, and hands the job to this machine's
warm worker, started if none serves (or to a one-shot worker when the warm one is busy): the
very client the GIMP plug-in uses (nst_client), so the warm worker outlives the session and
the next run pays neither ssh's log-in twice nor torch's start. It streams the events back,
each file the job writes (previews, the result) sent just before the event that names it.

End-of-file on stdin (the client cancelled, died, or the connection dropped) cancels the
job; the job folder goes however it ends (nst_client.JobFolder's janitor).
"""
import json
import os
import socket
import sys
import threading

import nst_client
import nst_protocol as protocol


def main(keep_alive, probe=False):
    out = os.fdopen(os.dup(1), 'wb')
    os.dup2(2, 1)                       # stray prints must not corrupt the stream
    sys.stdout = sys.stderr
    from . import __version__
    devices = _devices() if probe else None
    _write(out, protocol.encode_remote_hello(__version__, socket.gethostname(), devices)
           + '\n')
    if probe:
        return protocol.EXIT_OK
    config = _config(keep_alive)
    stdin = sys.stdin.buffer
    try:
        job, files = protocol.parse_stream_request(stdin.readline())
    except protocol.ProtocolError as e:
        _write(out, protocol.encode_event('error', kind='bad_job', message=str(e)) + '\n')
        return protocol.EXIT_BAD_JOB
    with nst_client.JobFolder(config) as folder:
        try:
            job_path = _receive(folder.path, job, files, stdin)
        except protocol.ProtocolError as e:      # the client went while sending
            _write(out, protocol.encode_event('error', kind='cancelled', message=str(e)) + '\n')
            return protocol.EXIT_CANCELLED
        try:
            return _run(config, folder.path, job_path, stdin, out)
        except OSError:                          # the client is gone: nobody to tell
            return protocol.EXIT_CANCELLED


def _devices():
    """[{"name": "cuda:0", "label": "NVIDIA ..."}, ..., {"name": "cpu", ...}] for the probe."""
    import platform

    import torch

    from .device import available
    found = []
    for kind in available():
        if kind == 'cuda':
            found += [{'name': 'cuda:%d' % i, 'label': torch.cuda.get_device_name(i)}
                      for i in range(torch.cuda.device_count())]
        else:
            found.append({'name': kind, 'label': platform.processor() or platform.machine()
                          if kind == 'cpu' else kind})
    return found


def _config(keep_alive):
    """The worker client's settings for this machine's engine: this interpreter, its own
    weights folder, and the keep-alive the client asked for (its warm worker's key names the
    installed engine, so an upgrade here is never served by an older worker)."""
    import nst_core
    return {'python': sys.executable, '_path': os.path.abspath(nst_core.__file__),
            'keep_alive_seconds': keep_alive, 'stall_seconds': 0, 'time_limit_seconds': 0}


def _receive(folder, job, files, stdin):
    """The request's files into the folder; job.json written there; its path."""
    for name, encoding, nbytes in files:
        data = protocol.unpack(encoding, protocol.read_exact(stdin, nbytes))
        protocol.write_buffer_atomic(os.path.join(folder, name), data)
    options = job.get('options')
    if isinstance(options, dict) and isinstance(options.get('trained_model'), str):
        # a file the client sent, by its name in the job's folder
        options['trained_model'] = os.path.join(folder, os.path.basename(
            options['trained_model']))
    path = os.path.join(folder, 'job.json')
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(job, f)
    return path


def _run(config, folder, job_path, stdin, out):
    # no owner: the warm worker here must outlive this SSH session, until its keep-alive
    channel = nst_client.open_channel(config, job_path, owner=False)
    threading.Thread(target=_watch, args=(stdin, channel), daemon=True).start()
    done = error = None
    while True:
        line = channel.lines.get()
        if line is None:
            break
        try:
            event = protocol.parse_event(line.decode('utf-8', 'replace'))
        except protocol.ProtocolError:
            _write(out, line)
            continue
        if event['event'] == 'preview':
            _send_file(out, folder, event['path'])
        elif event['event'] == 'done':
            done = event
            _send_file(out, folder, os.path.basename(event.get('output') or 'result.rgba'))
            line = protocol.encode_event(**dict(event, output=os.path.basename(
                event.get('output') or 'result.rgba'))).encode() + b'\n'
        elif event['event'] == 'error':
            error = event
        _write(out, line)
    code = channel.finish(done, error)
    return protocol.EXIT_FAILED if code is None else code


def _watch(stdin, channel):
    """End-of-file from the client: drop the job (the warm worker stays). The descriptor,
    not the buffered stream, whose lock would hold up the interpreter's exit."""
    try:
        while os.read(stdin.fileno(), 4096):
            pass
    except (OSError, ValueError):
        pass
    channel.stop()


def _send_file(out, folder, name):
    with open(os.path.join(folder, name), 'rb') as f:
        encoding, payload = protocol.pack(f.read())
    _write(out, protocol.encode_file_header(name, encoding, len(payload)) + '\n')
    _write(out, payload)


def _write(out, data):
    out.write(data.encode() if isinstance(data, str) else data)
    out.flush()
