"""The trained models of a run folder, loaded back for analysis (connectivity, export).

:func:`load_run` reads every checkpoint layout ``neurosim train`` writes: one or several seeds
(``checkpoints/seed<k>.pt``), a seed batch (``checkpoints/seeds<a>-<b>.pt``, unstacked into one
model per seed), fully connected, convolutional and LIF networks. A ``--control`` run's
frozen-hidden control is a run folder of its own: load ``<run>/control``
(``rate_models.train.CONTROL_FOLDER``).
The models are rebuilt as training builds them (``rate_models.train.seed_rules``) and the
checkpoints read as training's resume reads them (``rate_models.checkpoints.read_checkpoint``:
``weights_only``, a file holding code is refused unrun).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from neurosim.config import RunConfig
from neurosim.io import DamagedFile
from rate_models.checkpoints import CHECKPOINTS, checkpoint_path, read_checkpoint
from rate_models.seed_batch import unstack_into
from rate_models.train import seed_rules


def run_config(folder: Path) -> RunConfig:
    """The configuration of run folder ``folder`` (its ``config.json``)."""
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{folder}: no config.json; a run folder is written by "
                                "'neurosim train --out FOLDER'")
    try:
        return RunConfig.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError, UnicodeDecodeError) as err:
        raise DamagedFile(f"{path} is not a neurosim run configuration ({err})") from None


def _io_sizes(cfg: RunConfig, state: dict, ckpt: Path, fix: str) -> tuple[int, int]:
    """The network's input and output sizes: recorded in the checkpoint, or (checkpoints written
    before they were) read off a fully connected network's first and last weights."""
    if "input_dim" in state and "n_out" in state:
        return int(state["input_dim"]), int(state["n_out"])
    weights = sorted((k for k in state["rule"] if k.startswith("net.weights.")),
                     key=lambda k: int(k.rsplit(".", 1)[1]))
    if cfg.network.arch != "fc" or not weights:
        raise DamagedFile(f"checkpoint {ckpt} records no input and output sizes; {fix}")
    return int(state["rule"][weights[0]].shape[-1]), int(state["rule"][weights[-1]].shape[-2])


def load_run(folder, device="cpu", only: int | None = None) -> list[tuple[int, torch.nn.Module, object]]:
    """``(seed, net, rule)`` of every seed of run folder ``folder``, in seed order, with the
    weights of its last checkpoint (the last finished epoch; a diverged run's last good one) and
    the networks in evaluation mode (no dropout). With ``only`` just the checkpoint holding that
    seed is read, and just its model returned.

    Raises FileNotFoundError when the folder holds no run or a seed's checkpoint is missing, and
    :class:`neurosim.io.DamagedFile` when a checkpoint is damaged, holds code, or does not fit
    ``config.json``."""
    folder = Path(folder)
    cfg = run_config(folder)
    groups = [[cfg.training.seed + k for k in range(cfg.training.seeds)]] if cfg.training.seed_batch else \
        [[cfg.training.seed + k] for k in range(cfg.training.seeds)]
    if only is not None:
        groups = [g for g in groups if only in g]
    fix = "retrain the run, or load another run folder"
    device = torch.device(device)
    loaded = []
    for seeds in groups:
        ckpt = checkpoint_path(folder, seeds, cfg.training.seed_batch)
        if not ckpt.is_file():
            have = sorted(p.name for p in (folder / CHECKPOINTS).glob("seed*.pt"))
            raise FileNotFoundError(f"{ckpt} does not exist (checkpoints: {have or 'none'}); "
                                    "train the run first")
        state = read_checkpoint(ckpt, map_location=device, fix=fix)
        input_dim, n_out = _io_sizes(cfg, state, ckpt, fix)
        rule, _, _, views = seed_rules(cfg, seeds, [input_dim, *cfg.network.hidden, n_out], device)
        try:
            rule.load_state_dict(state["rule"])
        except RuntimeError as err:
            raise DamagedFile(f"checkpoint {ckpt} does not fit {folder / 'config.json'} "
                              f"({str(err).splitlines()[0]}); {fix}") from None
        if cfg.training.seed_batch:
            unstack_into(rule, views)
        for s, r in zip(seeds, views):
            r.eval()
            loaded.append((s, r.net, r))
    return loaded


def load_seed(folder, seed: int | None = None, device="cpu") -> tuple[RunConfig, int, torch.nn.Module, object]:
    """``(cfg, seed, net, rule)`` of one seed of run folder ``folder`` (default: its first seed),
    loaded by :func:`load_run`; a seed the run did not train raises FileNotFoundError naming
    the run's seeds."""
    folder = Path(folder)
    cfg = run_config(folder)
    seeds = list(range(cfg.training.seed, cfg.training.seed + cfg.training.seeds))
    seed = seeds[0] if seed is None else seed
    if seed not in seeds:
        raise FileNotFoundError(f"{folder / CHECKPOINTS / f'seed{seed}.pt'} does not exist (the run's "
                                f"seeds: {', '.join(map(str, seeds))}); choose one of them with --seed")
    _, net, rule = next(m for m in load_run(folder, device, only=seed) if m[0] == seed)
    return cfg, seed, net, rule
