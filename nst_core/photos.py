"""The training photos: a folder of pictures as an endless, reproducible stream of crops.

Johnson et al. (and pytorch/examples) train on photos resized to a short side of `size`,
cut to size x size. Here each crop is also at a random place and mirrored half the time, so
a folder of a few hundred photos (not COCO's 80 000) still gives varied batches.

Which photo, where and whether mirrored is a pure function of (seed, sample number), never
of a random state carried along: a training resumed at step k reads exactly the batches an
unbroken run reads from step k on, with nothing about the stream in the checkpoint.
"""
import logging
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Callable, List, Optional, Sequence

import numpy as np
import torch
from PIL import Image

_log = logging.getLogger(__name__)

# Resized photos kept in memory (short side = size, uint8): 256 px crops of 4:3 photos are
# about 0.26 MB each, so a few hundred photos are decoded once and then only cut.
CACHE_BYTES = 1 << 30


class PhotoError(ValueError):
    """The photo folder is missing, holds no pictures, or none of them can be read."""


def _readable_suffixes():
    return {ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}


def find_photos(inputs: Sequence[str]) -> List[Path]:
    """Picture files in the named folders (their subfolders too: an ImageFolder layout, as
    pytorch/examples wants, works as it is) and named files; sorted, hidden ones skipped."""
    suffixes, found = _readable_suffixes(), []
    for name in inputs:
        path = Path(name).expanduser()
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            found += sorted(p for p in path.rglob('*') if p.is_file()
                            and p.suffix.lower() in suffixes
                            and not any(part.startswith('.') for part in p.relative_to(path).parts))
        else:
            raise PhotoError('photo folder %s does not exist' % path)
    if not found:
        raise PhotoError('no pictures found in %s (give a folder of .jpg/.png photos)'
                         % ', '.join(map(str, inputs)))
    return found


def _short_side(img: Image.Image, size: int) -> Image.Image:
    w, h = img.size
    k = size / min(w, h)
    wh = (max(size, round(w * k)), max(size, round(h * k)))
    return img.resize(wh, Image.LANCZOS if k < 1 else Image.BICUBIC, reducing_gap=3.0)


def decode(path: Path, size: int) -> np.ndarray:
    """(h, w, 3) uint8 with short side `size`; OSError/ValueError for unreadable files."""
    with Image.open(path) as img:
        img.draft('RGB', (size, size))      # JPEGs decode at 1/2..1/8 scale: much faster
        img = img.convert('RGB')
        return np.asarray(_short_side(img, size))


class PhotoSet:
    """batch(step, n): (n, 3, size, size) float32 in 0..1, the same for the same step."""

    def __init__(self, paths: Sequence[Path], size: int, seed: int = 0,
                 warn: Optional[Callable[[str], None]] = None, cache_bytes: int = CACHE_BYTES):
        self.paths, self.size, self.seed = list(paths), size, seed
        self.warn = warn or _log.warning
        self.cache_bytes = cache_bytes
        self._cache, self._cached_bytes = OrderedDict(), 0
        self._bad = set()
        self._orders = {}
        self._lock = threading.Lock()

    def __len__(self):
        return len(self.paths)

    def _order(self, epoch):
        """The photos' order in one pass over the folder: a permutation per epoch."""
        if epoch not in self._orders:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._orders = {epoch: torch.randperm(len(self.paths), generator=gen).tolist()}
        return self._orders[epoch]

    def photo(self, index: int) -> np.ndarray:
        """Photo `index` resized; an unreadable one is reported once and replaced by the
        next readable one (the same one every time, so resuming stays exact)."""
        for k in range(len(self.paths)):
            i = (index + k) % len(self.paths)
            if i in self._bad:
                continue
            with self._lock:
                if i in self._cache:
                    self._cache.move_to_end(i)
                    return self._cache[i]
            try:
                arr = decode(self.paths[i], self.size)
            except (OSError, ValueError, SyntaxError) as e:
                self._bad.add(i)
                self.warn('skipping %s: not a readable picture (%s)' % (self.paths[i], e))
                continue
            self._remember(i, arr)
            return arr
        raise PhotoError('none of the %d pictures could be read (%s ...)'
                         % (len(self.paths), self.paths[0].parent))

    def _remember(self, i, arr):
        with self._lock:
            self._cache[i] = arr
            self._cached_bytes += arr.nbytes
            while self._cached_bytes > self.cache_bytes and len(self._cache) > 1:
                _, old = self._cache.popitem(last=False)
                self._cached_bytes -= old.nbytes

    def sample(self, number: int) -> np.ndarray:
        """Crop number `number` of the stream: (size, size, 3) uint8."""
        n = len(self.paths)
        arr = self.photo(self._order(number // n)[number % n])
        gen = np.random.default_rng([self.seed, number])
        h, w = arr.shape[:2]
        y, x = int(gen.integers(0, h - self.size + 1)), int(gen.integers(0, w - self.size + 1))
        crop = arr[y:y + self.size, x:x + self.size]
        return crop[:, ::-1] if gen.random() < 0.5 else crop

    def batch(self, step: int, n: int) -> torch.Tensor:
        crops = np.stack([self.sample(step * n + j) for j in range(n)])
        return torch.from_numpy(crops.astype(np.float32) / 255.0).permute(0, 3, 1, 2)


def prefetching(photos: PhotoSet, first_step: int, n: int):
    """Batches from first_step on; the next one is cut in a thread while a step computes
    (PIL's decoding and resizing release the GIL)."""
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(photos.batch, first_step, n)
        step = first_step
        while True:
            batch = pending.result()
            step += 1
            pending = pool.submit(photos.batch, step, n)
            yield batch
