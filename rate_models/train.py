"""The training loop of the rate backend: seeds, epochs, checkpoints, figures, run folder.

A run folder holds ``config.json`` (resolved), ``metrics.csv`` (one row per seed and epoch),
``summary.json``, plots, and ``checkpoints/seed<k>.pt`` (one per seed; ``seeds<a>-<b>.pt`` for
a seed batch), rewritten atomically at every epoch end. ``resume=True`` continues from those
checkpoints and reaches the same result as an uninterrupted run: model, rule, optimizer,
scheduler, torch's RNG, the shuffling generators and the per-step noise generators are all
restored.

Seeds train one after another, or with ``cfg.seed_batch`` all at once as one batched model
(``rate_models.seed_batch``) giving the same rows; under torchrun the processes split every batch
(``rate_models.distributed``).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from neurosim.config import STREAMED_DATASETS, RunConfig
from neurosim.datasets import load_dataset
from neurosim.io import (DamagedFile, atomic_write_json, load_torch_file, remove_debris,
                         write_atomically, write_csv_rows)
from neurosim.metrics import angle_deg
from neurosim.runs import run_summary, write_plots
from rate_models.data import TensorSplit, epoch_batches, to_split
from rate_models.distributed import Processes, setup
from rate_models.network import FCNetwork, StepNoise
from rate_models.rules import build_model
from rate_models.rules.gradient import bp_hidden_updates
from rate_models.seed_batch import check_seed_batch, stack_into, unstack_into


class TrainingDiverged(RuntimeError):
    """Raised when the loss or the weights stop being finite or the loss explodes."""


def _atomic_torch_save(obj, path: Path) -> None:
    write_atomically(path, lambda tmp: torch.save(obj, tmp))


def restore_checkpoint(ckpt: Path, rule, opt, sched, device, gens=()) -> tuple:
    """Load ``ckpt`` (tensors and plain values only: a file holding code is refused unrun) into
    the rule, optimizer, scheduler, torch's RNG, the shuffling generators ``gens`` and the
    per-step noise; return its ``(rows, epoch)``. A damaged or foreign checkpoint raises
    :class:`neurosim.io.DamagedFile` naming it and the way on."""
    fix = (f"resume from an earlier copy of {ckpt.name}, or start afresh with --overwrite "
           "(discards this run) or a new --out")
    state = load_torch_file(ckpt, map_location=device, fix=fix)
    try:
        rule.load_state_dict(state["rule"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        if device.type == "cuda" and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(state["cuda_rng"], device)
        for g, s in zip(gens, state.get("shuffle_rng", [])):
            g.set_state(s)
        if state.get("noise_rng") is not None:
            rule.net.noise.set_state(state["noise_rng"])
        return state["rows"], int(state["epoch"])
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError, IndexError) as err:
        detail = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise DamagedFile(f"checkpoint {ckpt} does not hold this run's state ({type(err).__name__}: "
                          f"{detail}); {fix}") from None


def readout_parameters(net) -> list[torch.nn.Parameter]:
    """The readout layer's weight and bias (if any): what learns when the hidden layers are frozen.
    FC, convolutional and LIF networks all list their output layer's weight last in ``weights``."""
    bias = net.layers[-1].bias if hasattr(net, "layers") else net.bias(net.n_layers - 1)
    return [net.weights[-1]] + ([bias] if bias is not None else [])


def _no_mirroring() -> None:
    """``after_step`` of a frozen-hidden rule: weight mirroring (B, or PEPITA's F) stays put."""


def build(cfg: RunConfig, sizes: list[int], seed: int, device):
    """Network, rule and optimizer of one seed.

    With ``cfg.freeze_hidden`` the optimizer holds only the readout's weight and bias, and the
    rule's weight mirroring is off, so hidden weights, biases and every plastic feedback tensor
    keep their initial values (the frozen-hidden control); :func:`train_seeds` drops the updates
    the rule leaves on them.
    """
    torch.manual_seed(seed)
    net, rule = build_model(cfg, sizes[0], sizes[-1], seed)  # sizes[1:-1] are cfg.hidden
    rule = rule.to(device)
    undecayed = net.undecayed_parameters()
    decayed = list(net.weights) + rule.feedback_parameters()
    if cfg.freeze_hidden:
        readout = readout_parameters(net)
        decayed = [p for p in decayed if any(p is q for q in readout)]
        undecayed = [p for p in undecayed if any(p is q for q in readout)]
        rule.after_step = _no_mirroring
    groups = [{"params": decayed, "weight_decay": cfg.weight_decay}]
    if undecayed:
        groups.append({"params": undecayed, "weight_decay": 0.0})
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    else:
        opt = torch.optim.Adam(groups, lr=cfg.lr)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=cfg.lr_milestones, gamma=cfg.lr_gamma)
    return net, rule, opt, sched


def frozen_parameters(rule, opt) -> list[torch.nn.Parameter]:
    """The rule's parameters that ``opt`` does not train (all but the readout's when frozen)."""
    trained = {id(p) for group in opt.param_groups for p in group["params"]}
    return [p for p in rule.parameters() if id(p) not in trained]


@torch.no_grad()
def evaluate(net: FCNetwork, split: TensorSplit, batch: int = 4096) -> tuple[float, float | None]:
    """Mean loss and accuracy (percent; None for regression) on a split, without dropout (a LIF
    network's rate encoder restarts its evaluation generator: the same spikes every epoch)."""
    net.eval()
    if hasattr(net, "reset_evaluation_noise"):
        net.reset_evaluation_noise()
    loss_sum, correct = 0.0, 0
    for i in range(0, len(split.x), batch):
        a = net(split.x[i:i + batch])
        t = split.target[i:i + batch]
        loss_sum += float(net.loss_from_logits(a, t)) * len(t)
        if split.labels is not None:
            correct += int((a.argmax(1) == split.labels[i:i + batch]).sum())
    net.train()
    n = len(split.x)
    return loss_sum / n, (100.0 * correct / n if split.labels is not None else None)


def epoch_figures(rule, net, probe: TensorSplit, rule_name: str) -> dict:
    """Alignment angles, weight norms and the angle to BP's hidden-layer update on a probe batch."""
    fig = dict(rule.alignment())
    for l, W in enumerate(net.weights, start=1):
        fig[f"weight_norm_l{l}"] = float(W.detach().norm())
    spiking = hasattr(net, "reset_evaluation_noise")
    if spiking:  # LIF networks: spike statistics, BPTT's gradient as the reference, same spikes
        from rate_models.spiking.lif import spike_statistics
        from rate_models.spiking.rules import bptt_hidden_updates

        fig.update(spike_statistics(net, probe.x, rule.cfg.dt))
    if rule_name != "bp" and net.n_layers > 1:
        net.eval()
        if spiking:
            net.reset_evaluation_noise()
        ours = rule.hidden_updates(probe.x, probe.target)
        if spiking:
            net.reset_evaluation_noise()
            bp = bptt_hidden_updates(net, probe.x, probe.target)
        else:
            bp = bp_hidden_updates(net, probe.x, probe.target)
        net.train()
        for l, (u, g) in enumerate(zip(ours, bp), start=1):
            if float(u.norm()) > 0 and float(g.norm()) > 0:
                # the rule's update and BP's gradient are both subtracted: same convention
                fig[f"bp_update_angle_l{l}_deg"] = angle_deg(u.double().cpu().numpy(), g.double().cpu().numpy())
    return fig


def _check_finite(loss: float, net: FCNetwork, epoch: int, cfg: RunConfig, checkpoint: Path,
                  last_row: dict | None, step_loss: float | None = None) -> None:
    """Stop the run when, in ``epoch``, the evaluated training ``loss`` or the mean loss of its
    training steps (``step_loss``) is not finite or above ``cfg.max_loss``, or a weight is not
    finite. ``checkpoint`` (the previous epoch's, whose row is ``last_row``) passed this same check
    when it was written, so it is named as the last good one."""
    bad_weights = any(not torch.isfinite(W).all() for W in net.weights)
    bad = [(what, v) for what, v in (("evaluated training loss", loss), ("mean loss of the training steps", step_loss))
           if v is not None and not (math.isfinite(v) and v <= cfg.max_loss)]
    if bad or bad_weights:
        what = "weights are not finite" if bad_weights else f"{bad[0][0]} is {bad[0][1]:.4g}"
        last = (f"{checkpoint} (epoch {last_row['epoch']}, training loss {last_row['train_loss']:.4g})"
                if checkpoint.exists() and last_row else "none (it diverged in the first epoch)")
        raise TrainingDiverged(
            f"run diverged in epoch {epoch + 1}: {what} (limit {cfg.max_loss:g}). "
            f"Last good checkpoint: {last}. Lower the learning rate (--lr) or use a preset.")


def seed_rules(cfg: RunConfig, seeds: list[int], sizes: list[int], device):
    """The rule that trains (with its optimizer and scheduler) and each seed's own rule.

    One seed: its rule from :func:`build`, drawing per-step noise from the seed's generator on
    ``device``. A seed batch (``cfg.seed_batch``): seed ``seeds[0]``'s built rule holds the stacked
    tensors of all seeds (``rate_models.seed_batch``); each seed keeps its own unstacked rule,
    refreshed after every epoch, for evaluation and figures.
    """
    built = [build(cfg, sizes, s, device) for s in seeds]
    _, rule, opt, sched = built[0]
    if not cfg.seed_batch:
        rule.net.noise = StepNoise(seeds, device)
        return rule, opt, sched, [rule]
    views = [copy.deepcopy(rule)] + [b[1] for b in built[1:]]
    stack_into(rule, views, seeds, device)
    return rule, opt, sched, views


def train_seeds(cfg: RunConfig, seeds: list[int], train: TensorSplit, test: TensorSplit, sizes: list[int],
                out: Path, resume: bool, bar, on_epoch=lambda rows: None,
                procs: Processes | None = None) -> tuple[list[dict], list]:
    """Train one seed, or with ``cfg.seed_batch`` several seeds at once as one batched model;
    return their per-epoch rows (seed by seed) and each seed's trained network.

    ``on_epoch(rows)`` is called after every epoch (the run writes metrics.csv there). In a
    data-parallel run (``procs``) every process trains its share of each batch
    (``rate_models.distributed``) and process 0 alone writes the checkpoint. The rows of a seed
    batch share the batched epoch's ``seconds``; ``samples_per_second`` counts every trained
    sample of the epoch (all seeds, all processes).
    """
    device = train.x.device
    procs = procs or Processes()
    rule, opt, sched, views = seed_rules(cfg, seeds, sizes, device)
    net = rule.net
    # parameters the rule may write .grad on but that never train
    frozen = frozen_parameters(rule, opt) if cfg.freeze_hidden else []
    procs.attach(opt)
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    name = f"seed{seeds[0]}" if not cfg.seed_batch else f"seeds{seeds[0]}-{seeds[-1]}"
    ckpt = out / "checkpoints" / f"{name}.pt"
    rows, start = {s: [] for s in seeds}, 0
    if resume and ckpt.exists():
        rows, start = restore_checkpoint(ckpt, rule, opt, sched, device, gens)
        bar.update(start * len(seeds) * len(train.x))
    elif cfg.pre_mirror_epochs and not cfg.freeze_hidden:
        n_batches = math.ceil(len(train.x) / cfg.batch_size)
        rule.pre_train(cfg.pre_mirror_epochs * n_batches, cfg.batch_size)

    probe_idx = torch.arange(min(cfg.probe_batch, len(train.x)), device=device)
    probe = TensorSplit(train.x[probe_idx], train.target[probe_idx],
                        None if train.labels is None else train.labels[probe_idx])
    shuffle = gens if cfg.seed_batch else gens[0]
    for epoch in range(start, cfg.epochs):
        decay = cfg.weight_decay
        if epoch > 0 and cfg.weight_decay_after_first_epoch is not None:
            decay = cfg.weight_decay_after_first_epoch
        opt.param_groups[0]["weight_decay"] = decay
        net.train()
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        loss_sum = torch.zeros(len(seeds) if cfg.seed_batch else (), device=device)
        for idx in epoch_batches(len(train.x), cfg.batch_size, shuffle, device):
            idx = procs.take(idx, net.noise)
            loss = rule.train_step(train.x[idx], train.target[idx], opt)
            for p in frozen:
                p.grad = None
            loss_sum += loss.detach() * idx.shape[-1]
            bar.update(len(seeds) * idx.shape[-1])
        loss_sum = procs.sum(loss_sum).reshape(-1).tolist()
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        if cfg.seed_batch:
            unstack_into(rule, views)
        lr = opt.param_groups[0]["lr"]
        sched.step()
        for s, r, total in zip(seeds, views, loss_sum):
            train_loss, train_acc = evaluate(r.net, train)
            _check_finite(train_loss, r.net, epoch, cfg, ckpt, rows[s][-1] if rows[s] else None,
                          total / len(train.x))
            test_loss, test_acc = evaluate(r.net, test)
            row = {"seed": s, "epoch": epoch + 1, "train_loss": train_loss, "train_accuracy": train_acc,
                   "test_loss": test_loss, "test_accuracy": test_acc, "train_step_loss": total / len(train.x),
                   "lr": lr, "seconds": seconds, "samples_per_second": len(seeds) * len(train.x) / seconds}
            row.update(epoch_figures(r, r.net, probe, cfg.rule))
            rows[s].append(row)
        if procs.writer:
            ckpt.parent.mkdir(parents=True, exist_ok=True)
            _atomic_torch_save({"rule": rule.state_dict(), "optimizer": opt.state_dict(),
                                "scheduler": sched.state_dict(), "torch_rng": torch.get_rng_state(),
                                "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                                "shuffle_rng": [g.get_state() for g in gens],
                                "noise_rng": net.noise.get_state(),
                                "rows": rows, "epoch": epoch + 1}, ckpt)
            on_epoch([row for s in seeds for row in rows[s]])
        shown = f"{test_acc:.2f}%" if test_acc is not None else f"{test_loss:.4g}"
        bar.set_postfix(seed=seeds[-1], epoch=f"{epoch + 1}/{cfg.epochs}", test=shown)
    return [row for s in seeds for row in rows[s]], [r.net for r in views]


CONTROL_FOLDER = "control"  # subfolder of a --control run holding the frozen-hidden control's run


def control_config(cfg: RunConfig) -> RunConfig:
    """The frozen-hidden control of ``cfg``: the same run with only the readout learning."""
    return dataclasses.replace(cfg, freeze_hidden=True, control=False)


RUN_FILES = ("config.json", "metrics.csv", "summary.json", "diverged.json", "learning_curves.png",
             "alignment.png", "output_weights.png")  # what a run writes, beside checkpoints/ and control/
DIVERGED = "diverged.json"  # written in place of summary.json when a run diverges


def train_run(cfg: RunConfig, out: str | Path, resume: bool = False, progress: bool = True,
              overwrite: bool = False) -> dict:
    """Train ``cfg.seeds`` seeds (one after another, or at once with ``cfg.seed_batch``) and write
    the run folder ``out``; return the summary. Launched by torchrun (``WORLD_SIZE`` > 1) the
    processes train data-parallel and process 0 writes the folder (``rate_models.distributed``).
    Streamed data sets (ImageNet, ``cfg.stream``) train in ``rate_models.imagenet``.

    A folder that already holds a run is refused unless ``resume`` (continue it: same
    configuration, ``epochs`` may grow) or ``overwrite`` (delete that run's files first). A run
    that diverges writes ``diverged.json`` (the message) instead of a summary.

    With ``cfg.control`` the frozen-hidden control (:func:`control_config`: same seeds, samples
    and schedule) then trains into ``out/control``, a run folder of its own; the run's summary
    adds ``control_test_accuracy`` and ``hidden_gain`` (test accuracy minus the control's, in
    percentage points) and its learning curves show the control's."""
    cfg.validate()
    out = Path(out)
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but torch sees no CUDA device; use --device cpu")
    if resume and overwrite:
        raise ValueError("--resume continues the run in --out and --overwrite deletes it: give one of them")
    check_out(cfg, out, resume, overwrite)
    procs, device = setup(cfg.device)
    if procs.writer:
        if overwrite:
            delete_run(out)
        for folder in (out, out / "checkpoints", out / CONTROL_FOLDER, out / CONTROL_FOLDER / "checkpoints"):
            remove_debris(folder)
        (out / DIVERGED).unlink(missing_ok=True)
    try:
        rows, weights, data = _train_folder(cfg, out, resume, progress, procs, device)
        control = None
        if cfg.control:
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
    old, new = saved.to_dict(), cfg.to_dict()
    differ = [k for k in new if k != "epochs" and old[k] != new[k]]
    if differ:
        listed = "; ".join(f"{k}: {old[k]!r} in the run, {new[k]!r} now" for k in differ)
        raise ValueError(f"--resume: the configuration differs from {config_path} ({listed}); resume "
                         "with the run's flags (only --epochs may grow), or start a new --out")
    done = _epochs_done(out)
    if cfg.epochs < done:
        raise ValueError(f"--resume: the run in {out} has trained {done} epochs, more than --epochs "
                         f"{cfg.epochs}; give --epochs {done} or more")


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
        cfg = json.loads((out / "config.json").read_text(encoding="utf-8"))
        what = f"{cfg['rule']} on {cfg['dataset']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "run files"
    if (out / "summary.json").exists():
        return f"{what}, finished"
    if (out / DIVERGED).exists():
        return f"{what}, diverged"
    return f"{what}, {_epochs_done(out)} of {cfg.get('epochs')} epochs"


def _train_folder(cfg: RunConfig, out: Path, resume: bool, progress: bool, procs: Processes, device) -> tuple:
    """Train every seed of ``cfg`` into ``out`` (config.json, metrics.csv, checkpoints); return
    the per-epoch rows, each seed's final weights and the data set (for the summary)."""
    if cfg.stream or cfg.dataset in STREAMED_DATASETS:  # batches from a DataLoader, not resident
        from rate_models.imagenet import train_streaming

        return train_streaming(cfg, out, resume, progress, procs, device)
    data = load_dataset(cfg.dataset, data_dir=cfg.data_dir)
    procs.check(cfg.batch_size, len(data.x_train))
    sizes = [int(np.prod(data.x_train.shape[1:])), *cfg.hidden, data.n_classes or int(np.prod(data.y_train.shape[1:]))]
    preflight(cfg, sizes)
    record = record_config(cfg, out, resume, procs)
    train = to_split(data.x_train, data.y_train, data.n_classes, device)
    test = to_split(data.x_test, data.y_test, data.n_classes, device)
    groups = [[cfg.seed + k for k in range(cfg.seeds)]] if cfg.seed_batch else \
        [[cfg.seed + k] for k in range(cfg.seeds)]

    all_rows, nets = [], []
    what = " (hidden frozen)" if cfg.freeze_hidden else ""
    with tqdm(total=cfg.epochs * cfg.seeds * len(train.x), unit="sample", unit_scale=True,
              disable=not (progress and procs.writer), desc=f"{cfg.rule} on {cfg.dataset}{what}") as bar:
        for seeds in groups:
            rows, group_nets = train_seeds(
                cfg, seeds, train, test, sizes, out, resume, bar,
                on_epoch=lambda rows: record(all_rows + rows), procs=procs)
            all_rows.extend(rows)
            nets.extend(group_nets)
    return all_rows, [np_weights(n) for n in nets], data


def preflight(cfg: RunConfig, sizes: list[int]) -> None:
    """Refuse, before anything is written, what would fail once training starts: a fully
    connected network too large for this machine's memory, a rule with no form for the
    architecture (or for a seed batch). Builds one seed's network and rule on the CPU."""
    if cfg.arch == "fc":
        weights = sum(a * b for a, b in zip(sizes, sizes[1:])) * (cfg.seeds if cfg.seed_batch else 1)
        need = weights * 4 * 4  # float32 weights, their updates, momentum and feedback
        have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        if need > have:
            raise ValueError(f"--arch {'-'.join(map(str, cfg.hidden))}: {weights:,} weights need about "
                             f"{need / 2**30:,.0f} GiB to train, more than this machine's "
                             f"{have / 2**30:,.0f} GiB; use smaller hidden layers")
    rule = build(cfg, sizes, cfg.seed, "cpu")[1]
    if cfg.seed_batch:
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
