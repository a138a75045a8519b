"""From a ``neurosim`` numpy data set to device-resident torch tensors.

The whole (small) data set lives on the device; an epoch is a seeded permutation sliced into
batches, so no per-sample Python work happens during training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class TensorSplit:
    x: torch.Tensor  # (N, D) float32, flattened inputs
    target: torch.Tensor  # (N, C) float32: one-hot for classification, values for regression
    labels: torch.Tensor | None  # (N,) int64 class labels, None for regression


def to_split(x: np.ndarray, y: np.ndarray, n_classes: int, device) -> TensorSplit:
    x_t = torch.as_tensor(np.ascontiguousarray(x.reshape(len(x), -1)), dtype=torch.float32, device=device)
    if n_classes:
        labels = torch.as_tensor(y, dtype=torch.int64, device=device)
        target = torch.nn.functional.one_hot(labels, n_classes).to(torch.float32)
        return TensorSplit(x_t, target, labels)
    target = torch.as_tensor(np.asarray(y, dtype=np.float32).reshape(len(y), -1), device=device)
    return TensorSplit(x_t, target, None)


def epoch_batches(n: int, batch_size: int, generator: torch.Generator | list[torch.Generator], device):
    """Index tensors of one shuffled epoch (the last batch may be smaller).

    With one generator each batch is ``(batch,)``; with a list of K (a seed batch) it is
    ``(K, batch)``, row k slicing seed k's own permutation, the one a separate run of that seed
    would draw.
    """
    if isinstance(generator, torch.Generator):
        order = torch.randperm(n, generator=generator).to(device)
    else:
        order = torch.stack([torch.randperm(n, generator=g) for g in generator]).to(device)
    return [order[..., i:i + batch_size] for i in range(0, n, batch_size)]
