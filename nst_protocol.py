"""Job protocol v1 between the GIMP plug-in and the worker (docs/protocol.md): the one
contract the plug-in, the installer and the engine stand on.

Standard library only, and one module imported by this name everywhere: the engine's venv
has it from the nst_core distribution (setup.cfg), install.py from the checkout it runs in,
and the plug-in from the copy install.py puts beside it, since GIMP's own Python has no
nst_core.
"""
import json
import os
import stat
from dataclasses import dataclass, field

PROTOCOL_VERSION = 1
# The engine's release, which the plug-in, the installer and a remote end must share: nst_core
# takes its __version__ from here, and a client refuses a remote engine of another.
ENGINE_VERSION = '0.1.0'
# What sets up the engine alone on a GPU box (docs/remote.md): said by every client that
# finds none there, or another version.
WORKER_ONLY = 'python3 install.py --worker-only'
BYTES_PER_PIXEL = 4
# Masks (where a style paints, which part of a painting it is read from) are one byte a
# pixel, 0 = not here, 255 = here: the 8-bit grey a GIMP channel reads as ("Y u8").
MASK_BYTES_PER_PIXEL = 1
# In style_masks instead of a buffer: where no other style's mask is (nst_core.regions.REST).
REST = 'rest'

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_JOB = 2
EXIT_CANCELLED = 3

ERROR_KINDS = ('bad_job', 'bad_input', 'weights', 'device', 'out_of_memory',
               'cancelled', 'internal')

# Worker-only keys allowed in "options" besides stylize()'s keyword arguments (previews:
# see docs/protocol.md, "Previews").
WORKER_OPTIONS = ('model', 'cache_dir', 'preview_seconds', 'preview_side')

# The longest short side a client need send a painting at, per method (a method not named
# here reads the whole painting). Fast's predictor reads a painting at a short side of 256
# px (nst_core.fast.PREDICTOR_SIZE): twice that keeps the detail its resampling uses, and a
# large painting is read, written and sent in a fraction of the time.
STYLE_SHORT_SIDE = {'fast': 512}

# The plug-in's time limits in its config (neural_style.json), seconds, 0 = none. It enforces
# them, because a deadlocked worker cannot police itself: no event for stall_seconds (a
# Quality step at 4096 px on a slow CPU takes about a minute, loading a model some seconds),
# or a run longer than time_limit_seconds (none by default: Quality can rightly take an hour).
# install.py writes these defaults; the plug-in uses them for configs without the keys.
# keep_alive_seconds: how long the warm worker waits for the next run (0 = a worker per run).
TIME_LIMITS = {'stall_seconds': 600, 'time_limit_seconds': 0, 'keep_alive_seconds': 600}


def is_seconds(value) -> bool:
    """A usable time limit: a finite number >= 0 (JSON's true/false are not numbers here)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and 0 <= value < float('inf')


def style_side(method, width, height):
    """The longest side to send a width x height painting at for this method, or None for
    its own size (STYLE_SHORT_SIDE)."""
    short = STYLE_SHORT_SIDE.get(method)
    if short is None or min(width, height) <= short:
        return None
    return max(1, round(max(width, height) * short / min(width, height)))


class JobError(ValueError):
    """job.json is malformed or names buffers that do not match it."""


class ProtocolError(ValueError):
    """An event line could not be understood."""


@dataclass
class Buffer:
    """A raw buffer file: RGBA8 pictures, or with bytes_per_pixel 1 a mask (MASK_...).
    painting_mask: a style's mask at its own size (the part of the painting it is read
    from), None for all of it."""
    path: str
    width: int
    height: int
    weight: float = 1.0
    bytes_per_pixel: int = BYTES_PER_PIXEL
    painting_mask: 'Buffer' = None

    @property
    def nbytes(self):
        return self.width * self.height * self.bytes_per_pixel


def mask_buffer(path, width, height):
    return Buffer(path, width, height, bytes_per_pixel=MASK_BYTES_PER_PIXEL)


@dataclass
class Job:
    """style_masks: per style a mask Buffer at the content's size (where it paints), None
    (everywhere) or REST; for a trained network, which has no style images, at most one."""
    content: Buffer
    styles: list
    output: str
    options: dict = field(default_factory=dict)
    style_masks: list = None

    def to_json(self):
        def buf(b, with_weight):
            d = {'path': b.path, 'width': b.width, 'height': b.height}
            if with_weight:
                d['weight'] = b.weight
                if b.painting_mask is not None:
                    d['painting_mask'] = buf(b.painting_mask, False)
            return d
        out = {
            'protocol': PROTOCOL_VERSION,
            'content': buf(self.content, False),
            'styles': [buf(s, True) for s in self.styles],
            'output': {'path': self.output},
            'options': dict(self.options),
        }
        if self.style_masks and any(m is not None for m in self.style_masks):
            out['style_masks'] = [m if m is None or m == REST else buf(m, False)
                                  for m in self.style_masks]
        return out

    def buffers(self):
        """Every buffer the job names (what a remote worker must be sent)."""
        found = [self.content, *self.styles]
        found += [s.painting_mask for s in self.styles if s.painting_mask is not None]
        found += [m for m in self.style_masks or () if isinstance(m, Buffer)]
        return found


def _require(cond, message):
    if not cond:
        raise JobError(message)


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _parse_buffer(d, what, base_dir, with_weight):
    _require(isinstance(d, dict), '%s must be an object' % what)
    path, w, h = d.get('path'), d.get('width'), d.get('height')
    _require(isinstance(path, str) and path, '%s.path must be a non-empty string' % what)
    _require(_is_int(w) and _is_int(h) and w > 0 and h > 0,
             '%s.width and .height must be positive integers' % what)
    weight = d.get('weight', 1.0)
    if with_weight:
        _require(isinstance(weight, (int, float)) and not isinstance(weight, bool)
                 and weight >= 0 and weight == weight and weight != float('inf'),
                 '%s.weight must be a finite number >= 0' % what)
    buffer = Buffer(os.path.join(base_dir, path), w, h, float(weight))
    if with_weight and d.get('painting_mask') is not None:
        mask = _parse_buffer(d['painting_mask'], what + '.painting_mask', base_dir, False)
        _require((mask.width, mask.height) == (w, h),
                 '%s.painting_mask is %dx%d, not %dx%d as its painting'
                 % (what, mask.width, mask.height, w, h))
        buffer.painting_mask = _as_mask(mask)
    return buffer


def _as_mask(buffer):
    buffer.bytes_per_pixel = MASK_BYTES_PER_PIXEL
    return buffer


def _parse_style_masks(data, content, styles, method, base_dir):
    masks = data.get('style_masks')
    if masks is None:
        return None
    room = 1 if method == 'trained' and not styles else len(styles)
    _require(isinstance(masks, list) and len(masks) <= room,
             'style_masks must be a list of at most %d (one per style)' % room)
    out = []
    for i, m in enumerate(masks):
        if m is None or m == REST:
            out.append(m)
            continue
        mask = _as_mask(_parse_buffer(m, 'style_masks[%d]' % i, base_dir, False))
        _require((mask.width, mask.height) == (content.width, content.height),
                 'style_masks[%d] is %dx%d, not %dx%d as the content'
                 % (i, mask.width, mask.height, content.width, content.height))
        out.append(mask)
    return out


def parse_job(data, base_dir='.'):
    """Validate a decoded job.json; relative paths are resolved against base_dir."""
    _require(isinstance(data, dict), 'job must be a JSON object')
    version = data.get('protocol')
    _require(version == PROTOCOL_VERSION,
             'unsupported protocol version %r (this worker speaks %d)'
             % (version, PROTOCOL_VERSION))
    content = _parse_buffer(data.get('content'), 'content', base_dir, False)
    options = data.get('options', {})
    _require(isinstance(options, dict), 'options must be an object')
    styles = data.get('styles')
    # a trained network is its style: its jobs may send none
    _require(isinstance(styles, list) and (styles or options.get('method') == 'trained'),
             'styles must be a non-empty list')
    styles = [_parse_buffer(s, 'styles[%d]' % i, base_dir, True) for i, s in enumerate(styles)]
    _require(not styles or sum(s.weight for s in styles) > 0,
             'style weights must not all be zero')
    out = data.get('output')
    _require(isinstance(out, dict) and isinstance(out.get('path'), str) and out['path'],
             'output.path must be a non-empty string')
    masks = _parse_style_masks(data, content, styles, options.get('method'), base_dir)
    return Job(content, styles, os.path.join(base_dir, out['path']), options, masks)


def read_job(path):
    """Load and validate job.json from a file."""
    try:
        with open(path, encoding='utf-8') as f:
            data = json.load(f)
    except OSError as e:
        raise JobError('cannot read job file %s: %s' % (path, e.strerror)) from None
    except ValueError as e:
        raise JobError('job file %s is not valid JSON: %s' % (path, e)) from None
    return parse_job(data, os.path.dirname(os.path.abspath(path)))


def write_job(job, directory, name='job.json'):
    path = os.path.join(directory, name)
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(job.to_json(), f, indent=1)
    return path


def read_buffer(buf):
    """Read a raw buffer (RGBA8, or a mask's one byte a pixel), checking its size against
    the declared width and height."""
    try:
        with open(buf.path, 'rb') as f:
            data = f.read(buf.nbytes + 1)
    except OSError as e:
        raise JobError('cannot read buffer %s: %s' % (buf.path, e.strerror)) from None
    # only one byte past the size is read: a longer file "holds more than" it
    _require(len(data) == buf.nbytes,
             'buffer %s holds %s bytes, expected %d (%dx%d %s)'
             % (buf.path, len(data) if len(data) <= buf.nbytes else 'more than %d' % buf.nbytes,
                buf.nbytes, buf.width, buf.height,
                'RGBA8' if buf.bytes_per_pixel == BYTES_PER_PIXEL else '8-bit grey mask'))
    return data


def write_buffer_atomic(path, data):
    """Write a buffer under a temporary name, then rename: readers never see half a file."""
    tmp = path + '.part'
    with open(tmp, 'wb') as f:
        f.write(data)
    os.replace(tmp, path)


# ---- events ------------------------------------------------------------------

def encode_event(event, **fields):
    return json.dumps(dict(event=event, **fields), separators=(',', ':'), allow_nan=False)


def parse_event(line):
    """Decode one stdout line into a dict with an 'event' key; raise ProtocolError otherwise."""
    try:
        data = json.loads(line)
    except ValueError:
        raise ProtocolError('worker printed something that is not an event: %r'
                            % line[:200]) from None
    if not isinstance(data, dict) or not isinstance(data.get('event'), str):
        raise ProtocolError('worker event has no "event" field: %r' % line[:200])
    if data['event'] == 'progress':
        frac = data.get('fraction')
        if not isinstance(frac, (int, float)) or isinstance(frac, bool) or not 0 <= frac <= 1:
            raise ProtocolError('progress event with a bad fraction: %r' % line[:200])
    if data['event'] == 'preview' and not _is_preview(data):
        raise ProtocolError('preview event without a relative path and a size: %r'
                            % line[:200])
    if data['event'] == 'error' and not isinstance(data.get('message'), str):
        raise ProtocolError('error event without a message: %r' % line[:200])
    return data


def _is_preview(data):
    # the reader opens the path inside the job's folder, so it must stay there
    path = data.get('path')
    return (isinstance(path, str) and path and not os.path.isabs(path)
            and '..' not in path.replace('\\', '/').split('/')
            and _is_int(data.get('width')) and _is_int(data.get('height'))
            and data['width'] > 0 and data['height'] > 0)


# ---- the warm worker's socket: the hello it greets with, the one request line it reads

def encode_hello(version, key, pid, busy):
    """The warm worker's greeting: who it is (its install's key, its pid) and whether it is
    busy with another client's job."""
    return encode_event('hello', protocol=PROTOCOL_VERSION, version=version, key=key,
                        pid=pid, busy=busy)


def parse_hello(line):
    """The hello as a dict; ValueError for anything else (then no worker of ours is there)."""
    hello = json.loads(line.decode('utf-8') if isinstance(line, bytes) else line)
    if not isinstance(hello, dict) or hello.get('event') != 'hello':
        raise ValueError('no hello: %r' % line[:200])
    return hello


def is_our_hello(hello, key):
    """A worker of this protocol and of the install `key` names, with a pid to kill."""
    return hello.get('protocol') == PROTOCOL_VERSION and hello.get('key') == key \
        and _is_int(hello.get('pid'))


def encode_request(job_path, owner):
    """The client's one line: the job's absolute path and the process it runs for
    (process_owner)."""
    return json.dumps({'job': os.path.abspath(job_path), 'owner': owner}) + '\n'


def parse_request(line):
    """(job path or None, owner or None, bye) from a request line; a job path is absolute."""
    try:
        request = json.loads(line)
    except ValueError:
        return None, None, False
    if not isinstance(request, dict):
        return None, None, False
    job = request.get('job')
    return (job if isinstance(job, str) and os.path.isabs(job) else None,
            request.get('owner'), request.get('bye') is True)


# ---- over SSH: one byte stream carries the job, its files and what comes back
# (docs/protocol.md, "Over SSH"). The remote sees no job folder of ours: the client sends a
# request line, then each file's bytes; the remote end answers with a hello, then the events,
# each file it wrote (result, previews) announced by a "file" event and followed by its bytes.

# zlib at level 1 where it saves a tenth or more: a photo's RGBA halves (its alpha is flat),
# at about 100 MB/s, faster than most links a GPU box is reached over (docs/remote.md).
PACK_LEVEL = 1
PACK_WORTH = 0.9


def pack(data):
    """(encoding, payload) of a file for the wire: 'zlib' where it pays, else 'raw'."""
    import zlib
    packed = zlib.compress(data, PACK_LEVEL)
    return ('zlib', packed) if len(packed) <= PACK_WORTH * len(data) else ('raw', data)


def unpack(encoding, payload):
    import zlib
    if encoding == 'raw':
        return payload
    if encoding == 'zlib':
        try:
            return zlib.decompress(payload)
        except zlib.error as e:
            raise ProtocolError('a file on the wire is not valid zlib: %s' % e) from None
    raise ProtocolError('unknown file encoding %r' % (encoding,))


def is_job_file_name(name):
    """A plain file name inside the job's folder: no folder, no way out of it."""
    return isinstance(name, str) and bool(name) and name not in ('.', '..') \
        and '/' not in name and '\\' not in name and '\0' not in name


def encode_file_header(name, encoding, nbytes):
    """The "file" event that precedes a file's bytes on the stream."""
    return encode_event('file', path=name, encoding=encoding, bytes=nbytes)


def parse_file_header(data):
    """(name, encoding, byte count) of a decoded "file" event (or a request's file entry)."""
    name, encoding, nbytes = data.get('path'), data.get('encoding'), data.get('bytes')
    if not is_job_file_name(name) or encoding not in ('raw', 'zlib') \
            or not _is_int(nbytes) or nbytes < 0:
        raise ProtocolError('bad file header: %r' % (data,))
    return name, encoding, nbytes


def encode_stream_request(job, files):
    """The request line: the job (its job.json, file names relative) and [(name, encoding,
    byte count)] of the files whose bytes follow it, in that order."""
    return json.dumps({'protocol': PROTOCOL_VERSION, 'job': job,
                       'files': [{'path': n, 'encoding': e, 'bytes': b} for n, e, b in files]},
                      separators=(',', ':')) + '\n'


def parse_stream_request(line):
    """(job dict, [(name, encoding, bytes)]) from a request line; ProtocolError otherwise."""
    try:
        data = json.loads(line)
    except ValueError:
        raise ProtocolError('the request is not JSON: %r' % line[:200]) from None
    if not isinstance(data, dict) or data.get('protocol') != PROTOCOL_VERSION \
            or not isinstance(data.get('job'), dict) or not isinstance(data.get('files'), list):
        raise ProtocolError('expected a protocol %d request with a job and its files, not %r'
                            % (PROTOCOL_VERSION, line[:200]))
    files = [parse_file_header(f if isinstance(f, dict) else {}) for f in data['files']]
    return data['job'], files


def read_exact(stream, nbytes):
    """nbytes from a binary stream; ProtocolError if it ends first."""
    chunks, left = [], nbytes
    while left:
        chunk = stream.read(min(left, 1 << 20))
        if not chunk:
            raise ProtocolError('the stream ended %d bytes into a file of %d'
                                % (nbytes - left, nbytes))
        chunks.append(chunk)
        left -= len(chunk)
    return b''.join(chunks)


def encode_remote_hello(version, host, devices=None):
    """The remote end's greeting: its engine's version and protocol, the machine, and its
    devices where it was asked to look (a probe: that imports torch)."""
    fields = {'protocol': PROTOCOL_VERSION, 'version': version, 'host': host}
    if devices is not None:
        fields['devices'] = devices
    return encode_event('hello', **fields)


# ---- the private folder of sockets and jobs

def private_folder(path, create=True):
    """Make path a folder of mode 0700 (create=True) and check it is one: anyone who can
    enter the folder of a warm worker's socket could ask it for jobs. None when it is
    private, else what is wrong, worded to follow the path ("... is a symbolic link")."""
    if create:
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        except OSError as e:
            return 'cannot be made: %s' % e.strerror
    try:
        info = os.lstat(path)
    except OSError as e:
        return 'cannot be read: %s' % e.strerror
    if stat.S_ISLNK(info.st_mode):
        return 'is a symbolic link; it must be a private folder'
    if not stat.S_ISDIR(info.st_mode):
        return 'is not a folder'
    if info.st_uid != os.getuid():
        return 'belongs to uid %d, not to you (%d)' % (info.st_uid, os.getuid())
    if info.st_mode & 0o077:
        return 'has mode %04o; it must be private (0700)' % stat.S_IMODE(info.st_mode)
    return None


def format_eta(seconds):
    """'35 s left' / '2 min left' for a status bar; '' when unknown."""
    if seconds is None or seconds != seconds or seconds < 0:
        return ''
    if seconds < 90:
        return '%d s left' % round(seconds)
    return '%d min left' % round(seconds / 60)


# ---------------------------------------------------------------- who uses a warm worker

def process_owner(pid):
    """{"pid": pid, "start": ...} naming a running process for a warm worker's job request
    (docs/protocol.md, "Who it serves"): the start time tells that process from a later
    one that got its pid. None for no process, or for init (pid 1), which adopts the
    processes whose parent died and so says nothing about who started them."""
    if not isinstance(pid, int) or pid <= 1:
        return None
    return {'pid': pid, 'start': process_start(pid)}


def process_start(pid):
    """When a process started, in clock ticks since boot (Linux's /proc/PID/stat, field 22);
    None where that cannot be read (other systems: the pid alone is compared)."""
    try:
        with open('/proc/%d/stat' % pid, 'rb') as f:
            return int(f.read().rsplit(b')', 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def owner_alive(owner):
    """Whether the process an owner names (process_owner) still runs: the same pid, not a
    zombie, and, where both are known, the same start time."""
    if not isinstance(owner, dict) or not isinstance(owner.get('pid'), int) \
            or isinstance(owner['pid'], bool) or owner['pid'] <= 1:
        return False
    pid = owner['pid']
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:              # someone else's process has it: ours is gone
        return False
    try:
        with open('/proc/%d/stat' % pid, 'rb') as f:
            fields = f.read().rsplit(b')', 1)[1].split()
        if fields[0] == b'Z':
            return False
        start = int(fields[19])
    except (OSError, ValueError, IndexError):
        return True              # no /proc (macOS): the pid answers
    return owner.get('start') is None or owner['start'] == start
