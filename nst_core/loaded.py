"""The networks loaded in this process and what was computed from them, kept for the next job.

One cache with one policy, owned by whoever runs jobs: the warm server (server.py) keeps
one for its life, so its next job reads no weights from disk and no painting twice; a
library caller's stylize() uses the process's own (PROCESS). A method asks it for what it
needs by a key that names the weights (and, for a file, its size and time, so a file
rewritten in place is read again), with the load to run on a miss.

The policy: least recently used first, past BUDGET bytes of tensors. It holds a Quality
job's two VGG trunks (a VGG-19 up to relu5_1 is 80 MB), the Fast network and a few trained
networks together, and a batch's style vectors (400 bytes each) cost next to nothing.
"""
import collections

BUDGET = 256 * 2 ** 20


class LoadedModels:
    """key -> a loaded network (or anything holding tensors), the least recently used
    dropped first once they hold more than `budget` bytes."""

    def __init__(self, budget: int = BUDGET):
        self.budget = budget
        self._kept = collections.OrderedDict()      # key -> (value, bytes)

    def get(self, key, load):
        """The value kept under `key`, or load()'s, kept there; key None: load()'s, not
        kept (a file that cannot be read: the load says why)."""
        if key is None:
            return load()
        if key in self._kept:
            self._kept.move_to_end(key)
            return self._kept[key][0]
        value = load()
        self._kept[key] = (value, size_of(value))
        self._evict()
        return value

    def __contains__(self, key):
        return key in self._kept

    def __len__(self):
        return len(self._kept)

    def held(self) -> int:
        """Bytes held, as the policy counts them."""
        return sum(size for _, size in self._kept.values())

    def clear(self):
        self._kept.clear()

    def _evict(self):
        # the newest stays even when it alone is over budget: the job in progress needs it
        while len(self._kept) > 1 and self.held() > self.budget:
            self._kept.popitem(last=False)


def size_of(value) -> int:
    """Bytes of the tensors in `value`: a module's parameters and buffers, a tensor, or a
    tuple of those (other parts count nothing)."""
    import torch        # not at import: the warm server makes its cache before torch loads
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, torch.nn.Module):
        return sum(size_of(t) for t in (*value.parameters(), *value.buffers()))
    if isinstance(value, (tuple, list)):
        return sum(size_of(v) for v in value)
    return 0


PROCESS = LoadedModels()     # stylize()'s when no runner passes its own


def chosen(models):
    """`models`, or the process's where the caller keeps none (an empty cache is a cache)."""
    return PROCESS if models is None else models
