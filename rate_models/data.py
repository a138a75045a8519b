"""Resident data: a ``neurosim`` numpy data set as device-resident torch tensors, and its batch
source for the training loop (``rate_models.loop``).

The whole (small) data set lives on the device; an epoch is a seeded permutation sliced into
batches, so no per-sample Python work happens during training. Streamed data sets have their
batch source in ``rate_models.imagenet``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from neurosim.config import RunConfig
from rate_models.distributed import Processes


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


class ResidentBatches:
    """The batch source of ``seeds`` (one seed, or a seed batch) on resident splits.

    Every epoch is each seed's own permutation of ``train`` from its generator seeded with the
    seed; a seed batch's batches are ``(K, batch, D)``. Under torchrun every process takes its
    rows of each global batch (``Processes.take``). Evaluation reads the whole splits on every
    process; the probe batch of the figures is the first ``cfg.training.probe_batch`` training rows.
    """

    evaluation_processes = None  # every process evaluates the whole split: nothing to sum

    def __init__(self, train: TensorSplit, test: TensorSplit, seeds: list[int], cfg: RunConfig,
                 procs: Processes | None = None):
        self.train, self.test, self.batch_size = train, test, cfg.training.batch_size
        self.procs = procs or Processes()
        self.generators = [torch.Generator().manual_seed(s) for s in seeds]
        self.shuffle = self.generators if cfg.training.seed_batch else self.generators[0]
        self.n_train = len(train.x)  # samples of one seed's epoch
        self.input_dim, self.n_out = train.x.shape[1], train.target.shape[1]
        self.batches_per_epoch = math.ceil(self.n_train / cfg.training.batch_size)
        n = min(cfg.training.probe_batch, len(train.x))
        self.probe = TensorSplit(train.x[:n], train.target[:n], None if train.labels is None else train.labels[:n])

    def epoch(self, epoch: int, noise):
        """``(x, target)`` of this process's rows of every batch of the next shuffled epoch
        (``epoch`` is not needed: the generators hold the position)."""
        for idx in epoch_batches(self.n_train, self.batch_size, self.shuffle, self.train.x.device):
            idx = self.procs.take(idx, noise)
            yield self.train.x[idx], self.train.target[idx]

    def evaluation(self, split: str) -> TensorSplit:
        """The split ``"train"`` or ``"test"`` to evaluate."""
        return self.train if split == "train" else self.test

    def shuffle_state(self) -> list[torch.Tensor]:
        return [g.get_state() for g in self.generators]

    def load_shuffle_state(self, state: list[torch.Tensor]) -> None:
        for g, s in zip(self.generators, state):
            g.set_state(s)
