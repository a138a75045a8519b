"""A training run of the rate backend: its model per seed, its run folder, its seeds.

:func:`train_run` checks the run folder, builds each seed's network, rule and optimizer
(:func:`build`, :func:`seed_rules`), picks the batch source (resident data,
``rate_models.data``; streamed data, ``rate_models.imagenet``) and hands both to the one training
loop (``rate_models.loop``), then writes the summary and plots.

A run folder holds ``config.json`` (resolved), ``metrics.csv`` (one row per seed and epoch),
``summary.json``, plots, and ``checkpoints/seed<k>.pt`` (one per seed; ``seeds<a>-<b>.pt`` for
a seed batch; ``rate_models.checkpoints``), rewritten atomically at every epoch end.
``resume=True`` continues from those checkpoints and reaches the same result as an uninterrupted
run: model, rule, optimizer, scheduler, torch's RNG, the shuffle state and the per-step noise
generators are all restored. ``rate_models.saved_runs.load_run`` loads a folder's trained models.

Seeds train one after another, or with ``cfg.training.seed_batch`` all at once as one batched model
(``rate_models.seed_batch``) giving the same rows; under torchrun the processes split every batch
(``rate_models.distributed``).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import shutil
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from neurosim.config import STREAMED_DATASETS, RunConfig
from neurosim.datasets import load_dataset
from neurosim.io import DamagedFile, atomic_write_json, remove_debris, write_csv_rows
from neurosim.runs import run_summary, write_plots
from rate_models.data import ResidentBatches, to_split
from rate_models.distributed import Processes, setup
from rate_models.divergence import TrainingDiverged
from rate_models.imagenet import StreamedBatches, streamed_data
from rate_models.loop import train_seeds
from rate_models.architectures import FCNetwork
from rate_models.network import StepNoise
from rate_models.rules import build_model
from rate_models.seed_batch import check_seed_batch, stack_into


def readout_parameters(net) -> list[torch.nn.Parameter]:
    """The readout layer's weight and bias (if any): what learns when the hidden layers are frozen.
    FC, convolutional and LIF networks all list their output layer's weight last in ``weights``."""
    bias = net.layers[-1].bias if hasattr(net, "layers") else net.bias(net.n_layers - 1)
    return [net.weights[-1]] + ([bias] if bias is not None else [])


def _no_mirroring() -> None:
    """``after_step`` of a frozen-hidden rule: weight mirroring (B, or PEPITA's F) stays put."""


def _hidden_lr_groups(groups: list[dict], readout: list, t) -> list[dict]:
    """Each group split in two: the readout's parameters at ``lr``, every other one at
    ``lr * hidden_lr_scale``; weight decay stays with its parameters."""
    ids = {id(p) for p in readout}
    split = []
    for g in groups:
        for is_readout, lr in ((True, t.lr), (False, t.lr * t.hidden_lr_scale)):
            params = [p for p in g["params"] if (id(p) in ids) == is_readout]
            if params:
                split.append({**g, "params": params, "lr": lr})
    return split


def build(cfg: RunConfig, sizes: list[int], seed: int, device):
    """Network, rule and optimizer of one seed.

    With ``cfg.training.freeze_hidden`` the optimizer holds only the readout's weight and bias, and the
    rule's weight mirroring is off, so hidden weights, biases and every plastic feedback tensor
    keep their initial values (the frozen-hidden control); the training loop
    (:func:`rate_models.loop.train_seeds`) drops the updates the rule leaves on them.
    """
    torch.manual_seed(seed)
    net, rule = build_model(cfg, sizes[0], sizes[-1], seed)  # sizes[1:-1] are cfg.network.hidden
    rule = rule.to(device)
    undecayed = net.undecayed_parameters()
    decayed = list(net.weights) + rule.feedback_parameters()
    if cfg.training.freeze_hidden:
        readout = readout_parameters(net)
        decayed = [p for p in decayed if any(p is q for q in readout)]
        undecayed = [p for p in undecayed if any(p is q for q in readout)]
        rule.after_step = _no_mirroring
    groups = [{"params": decayed, "weight_decay": cfg.training.weight_decay, "decayed": True}]
    if undecayed:
        groups.append({"params": undecayed, "weight_decay": 0.0})
    if cfg.training.hidden_lr_scale != 1.0:
        groups = _hidden_lr_groups(groups, readout_parameters(net), cfg.training)
    if cfg.training.optimizer == "sgd":
        opt = torch.optim.SGD(groups, lr=cfg.training.lr, momentum=cfg.training.momentum)
    else:
        opt = torch.optim.Adam(groups, lr=cfg.training.lr)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=cfg.training.lr_milestones, gamma=cfg.training.lr_gamma)
    return net, rule, opt, sched


def seed_rules(cfg: RunConfig, seeds: list[int], sizes: list[int], device):
    """The rule that trains (with its optimizer and scheduler) and each seed's own rule.

    One seed: its rule from :func:`build`, drawing per-step noise from the seed's generator on
    ``device``. A seed batch (``cfg.training.seed_batch``): seed ``seeds[0]``'s built rule holds the stacked
    tensors of all seeds (``rate_models.seed_batch``); each seed keeps its own unstacked rule,
    refreshed after every epoch, for evaluation and figures.
    """
    built = [build(cfg, sizes, s, device) for s in seeds]
    _, rule, opt, sched = built[0]
    if not cfg.training.seed_batch:
        rule.net.noise = StepNoise(seeds, device)
        return rule, opt, sched, [rule]
    views = [copy.deepcopy(rule)] + [b[1] for b in built[1:]]
    stack_into(rule, views, seeds, device)
    return rule, opt, sched, views


CONTROL_FOLDER = "control"  # subfolder of a --control run holding the frozen-hidden control's run


def control_config(cfg: RunConfig) -> RunConfig:
    """The frozen-hidden control of ``cfg``: the same run with only the readout learning."""
    return dataclasses.replace(cfg, freeze_hidden=True, control=False)


RUN_FILES = ("config.json", "metrics.csv", "summary.json", "diverged.json", "learning_curves.png",
             "alignment.png", "output_weights.png")  # what a run writes, beside checkpoints/ and control/
DIVERGED = "diverged.json"  # written in place of summary.json when a run diverges


def train_run(cfg: RunConfig, out: str | Path, resume: bool = False, progress: bool = True,
              overwrite: bool = False) -> dict:
    """Train ``cfg.training.seeds`` seeds (one after another, or at once with ``cfg.training.seed_batch``) and write
    the run folder ``out``; return the summary. Launched by torchrun (``WORLD_SIZE`` > 1) the
    processes train data-parallel and process 0 writes the folder (``rate_models.distributed``).
    Streamed data sets (ImageNet, ``cfg.streaming.stream``) come batch by batch from ``rate_models.imagenet``.

    A folder that already holds a run is refused unless ``resume`` (continue it: same
    configuration, ``epochs`` may grow) or ``overwrite`` (delete that run's files first). A run
    that diverges writes ``diverged.json`` (the message) instead of a summary.

    With ``cfg.training.control`` the frozen-hidden control (:func:`control_config`: same seeds, samples
    and schedule) then trains into ``out/control``, a run folder of its own; the run's summary
    adds ``control_test_accuracy`` and ``hidden_gain`` (test accuracy minus the control's, in
    percentage points) and its learning curves show the control's."""
    cfg.validate()
    out = Path(out)
    if cfg.training.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but torch sees no CUDA device; use --device cpu")
    if resume and overwrite:
        raise ValueError("--resume continues the run in --out and --overwrite deletes it: give one of them")
    check_out(cfg, out, resume, overwrite)
    procs, device = setup(cfg.training.device)
    if procs.writer:
        if overwrite:
            delete_run(out)
        for folder in (out, out / "checkpoints", out / CONTROL_FOLDER, out / CONTROL_FOLDER / "checkpoints"):
            remove_debris(folder)
        (out / DIVERGED).unlink(missing_ok=True)
    try:
        rows, weights, data = _train_folder(cfg, out, resume, progress, procs, device)
        control = None
        if cfg.training.control:
            ccfg, folder = control_config(cfg), out / CONTROL_FOLDER
            c_resume = resume and (folder / "config.json").exists()
            check_out(ccfg, folder, c_resume, overwrite=False)
            c_rows, c_weights, _ = _train_folder(ccfg, folder, c_resume, progress, procs, device)
            control = {"rows": c_rows, "summary": run_summary(ccfg, c_rows, c_weights, data)}
            if procs.writer:
                atomic_write_json(folder / "summary.json", control["summary"])
                write_plots(folder, c_rows, c_weights[0], control["summary"])
    except TrainingDiverged as err:
        if procs.writer and (out / "config.json").exists():
            atomic_write_json(out / DIVERGED, {"message": str(err)})
        raise
    summary = run_summary(cfg, rows, weights, data, control=control and control["summary"])
    if procs.writer:
        atomic_write_json(out / "summary.json", summary)
        write_plots(out, rows, weights[0], summary, control_rows=control and control["rows"])
    return summary


def holds_run(out: Path) -> bool:
    """Whether ``out`` holds (part of) a run: a run file or checkpoints."""
    return out.is_dir() and (any((out / name).exists() for name in RUN_FILES) or (out / "checkpoints").exists())


def delete_run(out: Path) -> None:
    """Delete the files a run wrote in ``out`` (its checkpoints and control run too), nothing else."""
    for name in RUN_FILES:
        (out / name).unlink(missing_ok=True)
    for sub in ("checkpoints", CONTROL_FOLDER):
        if (out / sub).is_dir():
            shutil.rmtree(out / sub)


def check_out(cfg: RunConfig, out: Path, resume: bool, overwrite: bool) -> None:
    """Refuse a run folder that cannot take this run, before anything is written: ``out`` is a
    file; it holds a run and neither ``resume`` nor ``overwrite`` is given; with ``resume``, it
    holds no run or one whose configuration differs in more than a longer ``epochs``."""
    blocking = next((p for p in [out, *out.parents] if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        where = "" if blocking == out else f" ({blocking} is)"
        raise ValueError(f"--out {out} is a file, not a folder{where}: give a folder for the run")
    config_path = out / "config.json"
    if not resume:
        if holds_run(out) and not overwrite:
            raise ValueError(f"--out {out} already holds a run ({_describe(out)}); continue it with "
                             "--resume, replace it with --overwrite, or choose another --out")
        return
    if not config_path.exists():
        raise FileNotFoundError(f"--resume: {config_path} does not exist; start the run without --resume")
    try:
        saved = RunConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
    except (ValueError, TypeError, UnicodeDecodeError) as err:
        raise DamagedFile(f"--resume: {config_path} is damaged ({err}); start afresh with --overwrite "
                          "or a new --out") from None
    old, new = saved.flat(), cfg.flat()
    differ = [k for k in new if k != "epochs" and old[k] != new[k]]
    if differ:
        listed = "; ".join(f"{k}: {old[k]!r} in the run, {new[k]!r} now" for k in differ)
        raise ValueError(f"--resume: the configuration differs from {config_path} ({listed}); resume "
                         "with the run's flags (only --epochs may grow), or start a new --out")
    done = _epochs_done(out)
    if cfg.training.epochs < done:
        raise ValueError(f"--resume: the run in {out} has trained {done} epochs, more than --epochs "
                         f"{cfg.training.epochs}; give --epochs {done} or more")


def _epochs_done(out: Path) -> int:
    """Epochs recorded in ``out/metrics.csv`` (the most any seed has), 0 without one."""
    from neurosim.io import read_csv_rows

    try:
        return max((int(r["epoch"]) for r in read_csv_rows(out / "metrics.csv")), default=0)
    except (OSError, KeyError, ValueError):
        return 0


def _describe(out: Path) -> str:
    """A few words on the run in ``out``: rule, data set and how far it got."""
    try:
        cfg = RunConfig.from_dict(json.loads((out / "config.json").read_text(encoding="utf-8"))).flat()
        what = f"{cfg['rule']} on {cfg['dataset']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "run files"
    if (out / "summary.json").exists():
        return f"{what}, finished"
    if (out / DIVERGED).exists():
        return f"{what}, diverged"
    return f"{what}, {_epochs_done(out)} of {cfg.get('epochs')} epochs"


def _train_folder(cfg: RunConfig, out: Path, resume: bool, progress: bool, procs: Processes, device) -> tuple:
    """Train every seed of ``cfg`` into ``out`` (config.json, metrics.csv, checkpoints) through
    the training loop (``rate_models.loop``), fed with resident batches or, for ImageNet and
    ``cfg.streaming.stream``, streamed ones; return the per-epoch rows, each seed's final weights and the
    data set (for the summary)."""
    streamed = cfg.streaming.stream or cfg.data.dataset in STREAMED_DATASETS
    if streamed:  # batches from a DataLoader, not resident; seeds one after another
        procs.check(cfg.training.batch_size, 0)  # every process loads an equal share: only divisibility matters
        data = streamed_data(cfg)
        sizes = [data.input_dim, *cfg.network.hidden, data.n_out]
        train = test = None
        described = data.source or data
    else:
        data = described = load_dataset(cfg.data.dataset, data_dir=cfg.data.data_dir)
        procs.check(cfg.training.batch_size, len(data.x_train))
        sizes = [int(np.prod(data.x_train.shape[1:])), *cfg.network.hidden,
                 data.n_classes or int(np.prod(data.y_train.shape[1:]))]
    preflight(cfg, sizes)
    record = record_config(cfg, out, resume, procs)
    if not streamed:
        train = to_split(data.x_train, data.y_train, data.n_classes, device)
        test = to_split(data.x_test, data.y_test, data.n_classes, device)
    groups = [[cfg.training.seed + k for k in range(cfg.training.seeds)]] if cfg.training.seed_batch else \
        [[cfg.training.seed + k] for k in range(cfg.training.seeds)]

    all_rows, nets = [], []
    what = ", ".join(["streamed"] * streamed + ["hidden frozen"] * cfg.training.freeze_hidden)
    with tqdm(total=None, unit="sample", unit_scale=True, disable=not (progress and procs.writer),
              desc=f"{cfg.rule} on {cfg.data.dataset}" + (f" ({what})" if what else "")) as bar:
        for seeds in groups:
            source = StreamedBatches(data, seeds[0], cfg, device, procs) if streamed else \
                ResidentBatches(train, test, seeds, cfg, procs)
            if bar.total is None:  # the bar counts samples: all seeds' epochs of this run
                bar.total = cfg.training.epochs * cfg.training.seeds * source.n_train
                bar.refresh()
            rows, group_nets = train_seeds(
                cfg, seeds, seed_rules(cfg, seeds, sizes, device), source, out, resume, bar,
                on_epoch=lambda rows: record(all_rows + rows), procs=procs)
            all_rows.extend(rows)
            nets.extend(group_nets)
    return all_rows, [np_weights(n) for n in nets], described


def preflight(cfg: RunConfig, sizes: list[int]) -> None:
    """Refuse, before anything is written, what would fail once training starts: a fully
    connected network too large for this machine's memory, a rule with no form for the
    architecture (or for a seed batch). Builds one seed's network and rule on the CPU."""
    if cfg.network.arch == "fc":
        weights = sum(a * b for a, b in zip(sizes, sizes[1:])) * (cfg.training.seeds if cfg.training.seed_batch else 1)
        need = weights * 4 * 4  # float32 weights, their updates, momentum and feedback
        have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        if need > have:
            raise ValueError(f"--arch {'-'.join(map(str, cfg.network.hidden))}: {weights:,} weights need about "
                             f"{need / 2**30:,.0f} GiB to train, more than this machine's "
                             f"{have / 2**30:,.0f} GiB; use smaller hidden layers")
    rule = build(cfg, sizes, cfg.training.seed, "cpu")[1]
    if cfg.training.seed_batch:
        check_seed_batch(rule)


def record_config(cfg: RunConfig, out: Path, resume: bool, procs: Processes):
    """Write ``config.json`` of a new run now, and return the per-epoch recorder that writes
    ``metrics.csv`` (and, when resuming, ``config.json``: a resume that fails on a damaged
    checkpoint leaves the folder as it was)."""
    if procs.writer and not resume:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / "config.json", cfg.to_dict())

    def record(rows: list[dict]) -> None:
        if resume:
            atomic_write_json(out / "config.json", cfg.to_dict())
        write_csv_rows(out / "metrics.csv", rows)

    return record


def np_weights(net: FCNetwork) -> list[np.ndarray]:
    return [W.detach().cpu().numpy() for W in net.weights]
