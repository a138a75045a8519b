"""Data-parallel training over several processes with ``torch.distributed``.

Launch: ``torchrun --nproc_per_node N -m neurosim train ...`` (``neurosim train`` sees
``WORLD_SIZE`` and joins the process group through torchrun's ``env://`` rendezvous; gloo on the
CPU, NCCL with ``--device cuda``, one GPU per process, ``LOCAL_RANK``).

Every process holds the whole model and the whole data set and seeds the same shuffling and
noise generators, so all processes agree on each global batch of ``--batch-size`` rows. Process
r takes its contiguous share of the rows (``N // world`` each; a smaller last batch of an epoch
is split as evenly as possible). Every rule's update of a batch is the batch mean of per-sample
terms (BP's gradient of the mean loss, the feedback rules' ``e x^T``, PEPITA's outer products),
so the global batch's update is the shares' updates averaged with weights ``n_r / N``. The one
uniform mechanism: before every optimizer step each process scales the ``.grad`` of every plastic
tensor by ``n_r / N`` and all-reduces the sum (one flattened all-reduce per step). It serves the
gradient rules, the feedback-path rules (custom autograd functions, whose gradients a
``DistributedDataParallel`` wrapper would not see for tensors outside the module) and the
forward-only PEPITA family alike, and it covers rules that step twice per batch
(PEPITA-time-local). After the step every process holds the same tensors.

Dropout masks and PEPITA's random perturbation are drawn for the whole global batch on every
process and sliced to the process's rows (``StepNoise.shard``), so N processes compute what one
process computes on the same global batch; mirror noise is not per sample and is drawn whole.
Batch-norm layers (the ResNets) normalise with the statistics of each process's rows, as plain
DDP does (torch's ``SyncBatchNorm`` runs on GPUs only), so for a ResNet N processes equal one
process on a batch of ``--batch-size / N`` rows per normalisation, not bit for bit one process on
the whole batch; every network without batch norm trains exactly as one process.

Process 0 alone writes the run folder and the checkpoints; on ``--resume`` every process reads
the checkpoint, so the run folder must be on a file system all processes see (one machine).
"""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Processes:
    """This process's place in a data-parallel run; ``world == 1``: a plain single-process run."""

    world: int = 1
    rank: int = 0
    fraction: float = 1.0  # n_r / N of the current step

    @property
    def writer(self) -> bool:
        """Whether this process writes the run folder."""
        return self.rank == 0

    def check(self, batch_size: int, n_train: int) -> None:
        """Raise ValueError unless every global batch splits over the processes."""
        if self.world == 1:
            return
        if batch_size % self.world:
            raise ValueError(f"--batch-size {batch_size} does not split evenly over {self.world} processes: "
                             f"give a global batch size divisible by {self.world}")
        last = n_train % batch_size
        if 0 < last < self.world:
            raise ValueError(f"the last batch of an epoch holds {last} sample(s) ({n_train} % {batch_size}), "
                             f"fewer than the {self.world} processes: choose another --batch-size")

    def take(self, idx: torch.Tensor, noise) -> torch.Tensor:
        """This process's rows of the global batch ``idx`` (last dimension); points ``noise`` at
        them and records the share ``n_r / N`` used when the updates are reduced."""
        if self.world == 1:
            return idx
        total = idx.shape[-1]
        q, extra = divmod(total, self.world)
        start = self.rank * q + min(self.rank, extra)
        stop = start + q + (self.rank < extra)
        noise.shard = (start, stop, total)
        self.fraction = (stop - start) / total
        return idx[..., start:stop]

    def share(self, rows: int, noise) -> None:
        """Record this process's share of a streamed global batch made of every process's ``rows``
        rows (each process loads an equal share, ``rate_models.imagenet``): ``n_r / N = 1/world``,
        and ``noise`` slices global-batch draws."""
        if self.world == 1:
            return
        noise.shard = (self.rank * rows, (self.rank + 1) * rows, self.world * rows)
        self.fraction = 1.0 / self.world

    def attach(self, optimizer: torch.optim.Optimizer) -> None:
        """Make every step of ``optimizer`` apply the global batch's update (see the module doc)."""
        if self.world > 1:
            optimizer.register_step_pre_hook(self._reduce_updates)

    def _reduce_updates(self, optimizer, args, kwargs) -> None:
        params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if not params:
            return
        flat = torch.cat([p.grad.reshape(-1) for p in params]) * self.fraction
        dist.all_reduce(flat)
        offset = 0
        for p in params:
            p.grad = flat[offset:offset + p.numel()].view_as(p)
            offset += p.numel()

    def sum(self, t: torch.Tensor) -> torch.Tensor:
        """Sum of ``t`` over the processes (the epoch's training loss)."""
        if self.world == 1:
            return t
        t = t.clone()
        dist.all_reduce(t)
        return t

def setup(device: str) -> tuple[Processes, torch.device]:
    """Join the process group when launched by torchrun (``WORLD_SIZE`` > 1) and pick this
    process's device; a single-process run gets ``Processes()`` and ``device`` as given.

    The group is made once per process and kept for later runs in the same process (a script
    calling ``train_run`` several times); it is destroyed when the process exits."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Processes(), torch.device(device)
    if device == "cuda":
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(dev)
    else:
        dev = torch.device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
        atexit.register(dist.destroy_process_group)
    return Processes(dist.get_world_size(), dist.get_rank()), dev
