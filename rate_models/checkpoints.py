"""Checkpoints of a run folder: the one writer and the one reader of ``checkpoints/*.pt``.

A run folder's ``checkpoints/`` holds ``seed<k>.pt`` per seed, or ``seeds<a>-<b>.pt`` for a seed
batch (its tensors stacked along a leading seed dimension, ``rate_models.seed_batch``),
rewritten atomically at every epoch end. A checkpoint is a dictionary of tensors and plain
values: ``rule`` (the rule's state dict, network included), ``optimizer``, ``scheduler``,
``torch_rng``, ``cuda_rng``, ``shuffle_rng`` (the batch source's shuffle state: the seeds'
shuffling generators of resident data, the sampler's seed and epoch of streamed data),
``noise_rng`` (the per-step noise generators), ``rows`` (seed -> metrics rows so far),
``epoch`` (epochs done), ``input_dim`` and ``n_out`` (the network's input and output sizes:
with the configuration, what rebuilds the network).

:func:`read_checkpoint` is the one reader: ``torch.load(weights_only=True)``, so a file holding
code is refused unrun. Training's resume (:func:`restore_checkpoint`) and the loading of
trained run folders (``rate_models.saved_runs``) both read through it.
"""

from __future__ import annotations

from pathlib import Path

import torch

from neurosim.io import DamagedFile, load_torch_file, write_atomically

CHECKPOINTS = "checkpoints"  # subfolder of a run folder


def checkpoint_path(out: Path, seeds: list[int], seed_batch: bool) -> Path:
    """The checkpoint of ``seeds`` (one seed, or a seed batch) in run folder ``out``."""
    name = f"seeds{seeds[0]}-{seeds[-1]}" if seed_batch else f"seed{seeds[0]}"
    return Path(out) / CHECKPOINTS / f"{name}.pt"


def save_checkpoint(path: Path, rule, opt, sched, device, data, rows: dict, epoch: int) -> None:
    """Write the state of a run on batch source ``data`` after ``epoch`` epochs to ``path``
    atomically (module doc)."""
    state = {"rule": rule.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
             "torch_rng": torch.get_rng_state(),
             "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
             "shuffle_rng": data.shuffle_state(), "noise_rng": rule.net.noise.get_state(),
             "rows": rows, "epoch": epoch, "input_dim": data.input_dim, "n_out": data.n_out}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, lambda tmp: torch.save(state, tmp))


def read_checkpoint(path: Path, map_location="cpu", fix: str = "retrain the run") -> dict:
    """The dictionary of checkpoint ``path``, read without running code from it; a damaged,
    foreign or code-holding file raises :class:`neurosim.io.DamagedFile` naming it and ``fix``."""
    state = load_torch_file(path, map_location=map_location, what="checkpoint", fix=fix)
    if not isinstance(state, dict) or not isinstance(state.get("rule"), dict):
        raise DamagedFile(f"checkpoint {path} holds no rule state; {fix}")
    return state


def restore_checkpoint(ckpt: Path, rule, opt, sched, device, data, seeds: list[int]) -> tuple[dict, int]:
    """Load ``ckpt`` into the rule, optimizer, scheduler, torch's RNG, the batch source ``data``'s
    shuffle state and the per-step noise; return its ``(rows, epoch)``. A damaged or foreign
    checkpoint raises :class:`neurosim.io.DamagedFile` naming it and the way on."""
    fix = (f"resume from an earlier copy of {ckpt.name}, or start afresh with --overwrite "
           "(discards this run) or a new --out")
    state = read_checkpoint(ckpt, map_location=device, fix=fix)
    try:
        rule.load_state_dict(state["rule"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        if device.type == "cuda" and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(state["cuda_rng"], device)
        if state.get("shuffle_rng") is not None:
            data.load_shuffle_state(state["shuffle_rng"])
        if state.get("noise_rng") is not None:
            rule.net.noise.set_state(state["noise_rng"])
        rows = state["rows"]
        if isinstance(rows, list) and len(seeds) == 1:  # streamed checkpoints held one seed's list
            rows = {seeds[0]: rows}
        if set(rows) != set(seeds):
            raise KeyError(f"rows of seeds {sorted(rows)}, not {seeds}")
        return rows, int(state["epoch"])
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError, IndexError) as err:
        detail = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise DamagedFile(f"checkpoint {ckpt} does not hold this run's state ({type(err).__name__}: "
                          f"{detail}); {fix}") from None
