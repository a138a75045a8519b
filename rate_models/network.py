"""What every rate network shares: the linear product of a seed batch and the per-step noise.

Every rule is written so that it also runs on a *seed batch* (``rate_models.seed_batch``): K
seeds' tensors stacked along a leading dimension, weights ``(K, N_l, N_{l-1})`` and activities
``(K, batch, N_l)``. Hence samples are indexed from the end (``dim=-2``, units ``dim=-1``),
transposes are ``.mT`` and :func:`linear` picks a batched product for stacked weights. Per-step
randomness comes from :class:`StepNoise`, one generator per seed, so K stacked seeds draw
exactly what K separate runs draw. The networks themselves are in ``rate_models.architectures``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def linear(h: torch.Tensor, W: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """``h W^T + b`` for one seed (``W`` 2-D: ``F.linear``, the single-seed arithmetic) or a seed
    batch (``W`` ``(K, N_out, N_in)``, ``b`` ``(K, N_out)``, ``h`` ``(K, batch, N_in)`` or a
    ``(batch, N_in)`` input shared by all seeds)."""
    if W.dim() == 2:
        return F.linear(h, W, b)
    out = h @ W.mT
    return out if b is None else out + b.unsqueeze(-2)


def noise_seed(seed: int) -> int:
    """Seed of a run seed's per-step noise generator: derived from ``seed`` but not equal to it,
    so the noise stream is not the data-shuffling stream (also seeded with ``seed``) again."""
    return int(np.random.SeedSequence([seed, 0x6E6F697365]).generate_state(1)[0])


class StepNoise:
    """Random draws made during training — dropout masks, PEPITA's random perturbation, mirror
    noise — from one ``torch.Generator`` per seed on the training device.

    With ``stacked`` the draws of the K generators are stacked along a new leading dimension (a
    seed batch); otherwise there is one seed and its draw is returned as is. ``shard = (start,
    stop, rows)`` (set by ``rate_models.distributed`` for every step) makes a per-sample draw of
    ``stop - start`` rows draw all ``rows`` rows of the global batch and keep rows
    ``start:stop``, so every process of a data-parallel run uses its rows of the masks one process
    would draw for the whole batch.
    """

    def __init__(self, seeds: list[int], device="cpu", stacked: bool = False):
        if not stacked and len(seeds) != 1:
            raise ValueError(f"unstacked noise is for one seed, got seeds {seeds}")
        self.generators = [torch.Generator(device).manual_seed(noise_seed(s)) for s in seeds]
        self.stacked = stacked
        self.shard: tuple[int, int, int] | None = None

    def _draw(self, draw, shape: tuple, per_sample: bool) -> torch.Tensor:
        rows = None
        if per_sample and self.shard is not None:
            start, stop, total = self.shard
            if shape[0] != stop - start:
                raise ValueError(f"a per-sample draw of {shape[0]} rows on a shard of {stop - start}")
            shape, rows = (total, *shape[1:]), slice(start, stop)
        out = [draw(tuple(shape), g) for g in self.generators]
        if rows is not None:
            out = [o[rows] for o in out]
        return torch.stack(out) if self.stacked else out[0]

    def bernoulli(self, p: float, shape: tuple, dtype, device, per_sample: bool = True) -> torch.Tensor:
        """Bernoulli(p) samples of ``shape`` (``shape[0]`` samples when ``per_sample``)."""
        return self._draw(lambda s, g: torch.bernoulli(torch.full(s, p, dtype=dtype, device=device), generator=g),
                          shape, per_sample)

    def rand(self, shape: tuple, dtype, device, per_sample: bool = True) -> torch.Tensor:
        """U[0, 1) samples of ``shape``."""
        return self._draw(lambda s, g: torch.rand(s, dtype=dtype, device=device, generator=g), shape, per_sample)

    def randn(self, shape: tuple, dtype, device, per_sample: bool = True) -> torch.Tensor:
        """N(0, 1) samples of ``shape``."""
        return self._draw(lambda s, g: torch.randn(s, dtype=dtype, device=device, generator=g), shape, per_sample)

    def get_state(self) -> list[torch.Tensor]:
        return [g.get_state() for g in self.generators]

    def set_state(self, states: list[torch.Tensor]) -> None:
        if len(states) != len(self.generators):
            raise ValueError(f"{len(states)} saved noise generators for {len(self.generators)} seeds")
        for g, state in zip(self.generators, states):
            g.set_state(state)
