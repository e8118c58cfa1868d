"""Memory a job will need against memory there is: refuse (or shrink) up front, so a job too
large for the machine ends with a clear message instead of an out-of-memory kill.

Figures measured on the CPU with ru_maxrss (torch 2.14, VGG-16 to relu5_1, bf16 autocast,
3 L-BFGS steps at a single scale): Quality peaks at 0.82 GB at 128 px, 1.0 GB at 256, 1.6 GB
at 512, 2.3 GB at 768, 3.2 GB at 1024 (about 2.2 KB per pixel over a 0.8 GB base); L-BFGS
keeps 100 pairs of image-sized float32 vectors on top (2.4 KB per pixel once its history
fills). Fast (tiled above 1024 px) peaks at 0.64 GB at 512 px, 0.84 GB at 1024, 1.35 GB at
2048, 1.98 GB at 3000 (about 140-300 bytes per pixel). The constants round these up.
"""
import math
import os

GB = 1 << 30
BASE = {'quality': 0.9 * GB, 'fast': 0.7 * GB}
PER_PIXEL = {'quality': 2600, 'fast': 320}          # bytes, activations and images
LBFGS_PER_PIXEL = 2 * 100 * 3 * 4                  # history: 100 (s, y) pairs of 3 floats
ADAM_PER_PIXEL = 3 * 3 * 4                         # two moments and the gradient
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


def needed(method, wh, optimizer='lbfgs'):
    """Estimated peak bytes for a job whose working image is wh = (width, height)."""
    px = wh[0] * wh[1]
    per = PER_PIXEL[method]
    if method == 'quality':
        per += LBFGS_PER_PIXEL if optimizer == 'lbfgs' else ADAM_PER_PIXEL
    return BASE[method] + px * per


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
    per = needed(method, (1, 1), optimizer) - BASE[method]
    if room <= 0:
        return 0
    aspect = min(wh) / max(wh)
    side = int(math.sqrt(room / per / aspect))
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
