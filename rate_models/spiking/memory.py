"""Peak memory of tensors on any device, for the memory test and the throughput benchmark.

``torch.cuda.max_memory_allocated`` exists only on CUDA; on the CPU torch keeps no allocation
statistics, so :class:`LiveTensorBytes` counts them itself: every tensor storage an operation
creates inside the context is added when made and removed when freed, and the peak of the sum
is kept. Tensors made before the context (weights, the data) are not counted.
"""

from __future__ import annotations

import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode


class LiveTensorBytes(TorchDispatchMode):
    """``with LiveTensorBytes() as mem: ...`` then ``mem.peak``: the largest number of bytes held at
    once by storages created inside the block."""

    def __init__(self):
        super().__init__()
        self.live, self.peak, self.storages = 0, 0, set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor):
                storage = t.untyped_storage()
                key, nbytes = storage.data_ptr(), storage.nbytes()
                if nbytes and key not in self.storages:
                    self.storages.add(key)
                    self.live += nbytes
                    self.peak = max(self.peak, self.live)
                    weakref.finalize(storage, self._free, key, nbytes)
        return out

    def _free(self, key: int, nbytes: int) -> None:
        if key in self.storages:
            self.storages.discard(key)
            self.live -= nbytes
