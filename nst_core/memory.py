"""Memory a job will need against memory there is: refuse (or shrink) up front, so a job too
large for the machine ends with a clear message instead of an out-of-memory kill.

Figures measured on the CPU with ru_maxrss (torch 2.14, VGG-16 to relu5_1, bf16 autocast,
square photos, Draft with the final scale's steps set, regions whole): Quality peaks at
1.18 GB at 512 px and 3 final steps, 2.30 GB at 1024 px and 3 steps, 2.81 GB at 1024 px and
20 steps: about 1.5 KB per pixel over a 0.8 GB base, plus about 30 bytes per pixel for each
L-BFGS step its history keeps (up to 100). Regions larger than QUALITY_TILE run in tiles, so
only the canvases grow with the picture. Fast (bands of rows, a canvas of fixed size) peaks
at 0.75 GB at 2048 px, 1.15 GB at 4096, 2.6 GB at 8192 (docs/fast.md): under 40 bytes per
pixel over a 0.65 GB base; its constant (320) is left from the one-pass network, far above
that, until the GIMP tests that refuse a 640 px layer at 0.95 GB free are re-sized.
"""
import math
import os

GB = 1 << 30
BASE = {'quality': 0.9 * GB, 'fast': 0.7 * GB}
PER_PIXEL = {'quality': 1700, 'fast': 320}          # bytes, activations and images
LBFGS_PAIR_PER_PIXEL = 32                          # one (s, y) pair of 3 floats, and then some
LBFGS_HISTORY = 100                                # pairs kept (quality.LBFGS_HISTORY)
ADAM_PER_PIXEL = 3 * 3 * 4                         # two moments and the gradient
# Quality optimises at most QUALITY_TILE x QUALITY_TILE pixels at once (less where memory
# is short, down to MIN_TILE); larger scales run in tiles (quality.py, tiling.py). What stays
# whole are a few float32 RGB pictures: the content, the canvas and its start at the largest
# refined octave, and the output the last picture is enlarged into (detail.enlarge).
QUALITY_TILE = 1024
MIN_TILE = 256
CANVAS_PER_PIXEL = 4 * 3 * 4
HEADROOM = 0.85                                    # of what is free: others need some too
# The size that fits is rounded down to a multiple of this: free memory moves by some MB
# between two runs, and a refusal naming 2218 px followed by "working at 2219 px" after the
# user ticked Fit read as a contradiction.
SIDE_STEP = 16


class NotEnoughMemory(MemoryError):
    """The job would need more memory than the machine has free; the message says the size
    it can do. `details` holds the figures (method, width, height, needed_bytes,
    usable_bytes, free_bytes, largest_side), for callers that word it their own way (the
    worker sends them in its error event, and the GIMP plug-in names its dialog's options)."""

    def __init__(self, message, details=None):
        super().__init__(message)
        self.details = dict(details or {})


def region_per_pixel(steps=LBFGS_HISTORY, optimizer='lbfgs'):
    """Bytes per pixel of a Quality region optimised for `steps` (L-BFGS keeps one pair of
    image-sized vectors per step, up to its history)."""
    if optimizer != 'lbfgs':
        return PER_PIXEL['quality'] + ADAM_PER_PIXEL
    return PER_PIXEL['quality'] + LBFGS_PAIR_PER_PIXEL * min(steps, LBFGS_HISTORY)


def needed(method, wh, optimizer='lbfgs'):
    """Estimated peak bytes for a job whose working image is wh = (width, height): for
    Quality the least it can run in, its canvases whole and its regions as small as tiles go."""
    px = wh[0] * wh[1]
    if method == 'quality':
        region = min(px, MIN_TILE * MIN_TILE)
        return BASE[method] + region * region_per_pixel(optimizer=optimizer) \
            + px * CANVAS_PER_PIXEL
    return BASE[method] + px * PER_PIXEL[method]


def tile_side(wh, steps, optimizer, free):
    """The longest side of the regions Quality optimises at once, for a scale of wh run for
    `steps` with `free` bytes (None: unknown): QUALITY_TILE where that fits, else less."""
    if free is None:
        return QUALITY_TILE
    room = free * HEADROOM - BASE['quality'] - wh[0] * wh[1] * CANVAS_PER_PIXEL
    side = int(math.sqrt(max(room, 0) / region_per_pixel(steps, optimizer)))
    return min(QUALITY_TILE, max(MIN_TILE, side // SIDE_STEP * SIDE_STEP))


def _cgroup_free():
    """Room left under a container's memory limit (cgroup v2), or None."""
    try:
        with open('/sys/fs/cgroup/memory.max') as f:
            limit = f.read().strip()
        with open('/sys/fs/cgroup/memory.current') as f:
            used = int(f.read())
    except (OSError, ValueError):
        return None
    return None if limit == 'max' else int(limit) - used


def available(device='cpu'):
    """Bytes free for this process on `device` (a torch.device or name), or None if unknown."""
    kind = getattr(device, 'type', str(device).split(':')[0])
    if kind == 'cuda':
        import torch
        return torch.cuda.mem_get_info(device)[0]
    if kind != 'cpu':
        return None                      # MPS shares memory with the system: no good figure
    free = None
    try:
        with open('/proc/meminfo') as f:
            for line in f:
                if line.startswith('MemAvailable:'):
                    free = int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    if free is None and hasattr(os, 'sysconf'):
        try:
            free = os.sysconf('SC_AVPHYS_PAGES') * os.sysconf('SC_PAGE_SIZE')
        except (OSError, ValueError):
            free = None
    cgroup = _cgroup_free()
    if cgroup is not None:
        free = cgroup if free is None else min(free, cgroup)
    return free


def largest_side(method, wh, free, optimizer='lbfgs'):
    """Longest side at which a job of wh's aspect fits in `free` bytes (0 if none does)."""
    room = free * HEADROOM - BASE[method]
    if room <= 0:
        return 0
    if method == 'quality':    # needed(): a region up to MIN_TILE^2 px, then canvases only
        per, tile_px = region_per_pixel(optimizer=optimizer), MIN_TILE * MIN_TILE
        px = room / (per + CANVAS_PER_PIXEL)
        if px > tile_px:
            px = (room - tile_px * per) / CANVAS_PER_PIXEL
    else:
        px = room / PER_PIXEL[method]
    aspect = min(wh) / max(wh)
    side = int(math.sqrt(px / aspect))
    return side // SIDE_STEP * SIDE_STEP if side >= SIDE_STEP else side


def _gb(n):
    return ('%.2f GB' if n < 10 * GB else '%.1f GB') % (n / GB)


def check(method, wh, free, optimizer='lbfgs', fit=False):
    """The longest side to work at: max(wh) when it fits in `free` bytes (None: unknown);
    with fit, the largest that fits; otherwise NotEnoughMemory naming that size."""
    if free is None or needed(method, wh, optimizer) <= free * HEADROOM:
        return max(wh)
    side = largest_side(method, wh, free, optimizer)
    if fit and side >= 16:
        return side
    need = needed(method, wh, optimizer)
    # Say what can be used, not just what is free: "0.8 GB needed, 0.9 GB free" reads as a bug.
    what = '%s at %dx%d needs about %s but only %s can be used (%d %% of the %s free)' % (
        method.capitalize(), wh[0], wh[1], _gb(need), _gb(free * HEADROOM),
        round(HEADROOM * 100), _gb(free))
    details = dict(method=method, width=wh[0], height=wh[1], needed_bytes=int(need),
                   usable_bytes=int(free * HEADROOM), free_bytes=int(free),
                   largest_side=side if side >= 16 else 0)
    if side < 16:
        raise NotEnoughMemory('not enough memory: %s; close other programs' % what, details)
    raise NotEnoughMemory('not enough memory: %s; the largest size that fits now is %d px '
                          '(choose that output size or less%s, or ask to fit: --fit, fit=True)'
                          % (what, side, ', or the Fast method' if method == 'quality' else ''),
                          details)
