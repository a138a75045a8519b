"""The training loop of the rate backend: seeds, epochs, checkpoints, figures, run folder.

A run folder holds ``config.json`` (resolved), ``metrics.csv`` (one row per seed and epoch),
``summary.json``, plots, and ``checkpoints/seed<k>.pt`` (one per seed, rewritten atomically at
every epoch end). ``resume=True`` continues from those checkpoints and reaches the same result as
an uninterrupted run: model, rule, optimizer, scheduler, torch's RNG and the shuffling generator
are all restored.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from neurosim.config import RunConfig
from neurosim.datasets import load_dataset
from neurosim.io import atomic_write_json, write_csv_rows
from neurosim.metrics import angle_deg
from neurosim.runs import run_summary, write_plots
from rate_models.data import TensorSplit, epoch_batches, to_split
from rate_models.network import FCNetwork
from rate_models.conv import build_conv_model
from rate_models.conv.gradient import bp_hidden_updates as conv_bp_hidden_updates
from rate_models.rules import build_rule
from rate_models.rules.gradient import bp_hidden_updates


class TrainingDiverged(RuntimeError):
    """Raised when the loss or the weights stop being finite or the loss explodes."""


def _atomic_torch_save(obj, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def build(cfg: RunConfig, sizes: list[int], seed: int, device):
    """Network, rule and optimizer of one seed."""
    torch.manual_seed(seed)
    if cfg.arch == "fc":
        net = FCNetwork(sizes, cfg.activation, cfg.output, cfg.dropout, cfg.bias, cfg.init, seed,
                        cfg.normalize_activations)
        rule = build_rule(cfg.rule, net, cfg, seed).to(device)
        undecayed = list(net.biases) if net.biases is not None else []
    else:  # a convolutional architecture built from the rule's layers; cfg.hidden is not used
        net, rule = build_conv_model(cfg, sizes[0], sizes[-1], seed)
        rule = rule.to(device)
        undecayed = net.undecayed_parameters()
    decayed = list(net.weights) + rule.feedback_parameters()
    groups = [{"params": decayed, "weight_decay": cfg.weight_decay}]
    if undecayed:
        groups.append({"params": undecayed, "weight_decay": 0.0})
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    else:
        opt = torch.optim.Adam(groups, lr=cfg.lr)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=cfg.lr_milestones, gamma=cfg.lr_gamma)
    return net, rule, opt, sched


@torch.no_grad()
def evaluate(net: FCNetwork, split: TensorSplit, batch: int = 4096) -> tuple[float, float | None]:
    """Mean loss and accuracy (percent; None for regression) on a split, without dropout."""
    net.eval()
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
    if rule_name != "bp" and net.n_layers > 1:
        net.eval()
        ours = rule.hidden_updates(probe.x, probe.target)
        bp = (bp_hidden_updates if isinstance(net, FCNetwork) else conv_bp_hidden_updates)(
            net, probe.x, probe.target)
        net.train()
        for l, (u, g) in enumerate(zip(ours, bp), start=1):
            if float(u.norm()) > 0 and float(g.norm()) > 0:
                # the rule's update and BP's gradient are both subtracted: same convention
                fig[f"bp_update_angle_l{l}_deg"] = angle_deg(u.double().cpu().numpy(), g.double().cpu().numpy())
    return fig


def _check_finite(loss: float, net: FCNetwork, epoch: int, cfg: RunConfig, checkpoint: Path) -> None:
    bad_weights = any(not torch.isfinite(W).all() for W in net.weights)
    if not math.isfinite(loss) or loss > cfg.max_loss or bad_weights:
        what = "weights are not finite" if bad_weights else f"training loss is {loss:.4g}"
        last = checkpoint if checkpoint.exists() else "none (it diverged in the first epoch)"
        raise TrainingDiverged(
            f"run diverged in epoch {epoch + 1}: {what} (limit {cfg.max_loss:g}). "
            f"Last good checkpoint: {last}. Lower the learning rate (--lr) or use a preset.")


def train_seed(cfg: RunConfig, seed: int, train: TensorSplit, test: TensorSplit, sizes: list[int],
               out: Path, resume: bool, bar, on_epoch=lambda rows: None) -> tuple[list[dict], FCNetwork, object]:
    """Train one seed; return its per-epoch rows, the trained network and rule.
    ``on_epoch(rows)`` is called after every epoch (the run writes metrics.csv there)."""
    device = train.x.device
    net, rule, opt, sched = build(cfg, sizes, seed, device)
    gen = torch.Generator().manual_seed(seed)
    ckpt = out / "checkpoints" / f"seed{seed}.pt"
    rows, start = [], 0
    if resume and ckpt.exists():
        state = torch.load(ckpt, map_location=device, weights_only=False)
        rule.load_state_dict(state["rule"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        if device.type == "cuda" and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(state["cuda_rng"])
        gen.set_state(state["shuffle_rng"])
        rows, start = state["rows"], state["epoch"]
        bar.update(start)
    elif cfg.pre_mirror_epochs:
        n_batches = math.ceil(len(train.x) / cfg.batch_size)
        rule.pre_train(cfg.pre_mirror_epochs * n_batches, cfg.batch_size)

    probe_idx = torch.arange(min(cfg.probe_batch, len(train.x)), device=device)
    probe = TensorSplit(train.x[probe_idx], train.target[probe_idx],
                        None if train.labels is None else train.labels[probe_idx])
    for epoch in range(start, cfg.epochs):
        decay = cfg.weight_decay
        if epoch > 0 and cfg.weight_decay_after_first_epoch is not None:
            decay = cfg.weight_decay_after_first_epoch
        opt.param_groups[0]["weight_decay"] = decay
        net.train()
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        loss_sum = torch.zeros((), device=device)
        for idx in epoch_batches(len(train.x), cfg.batch_size, gen, device):
            loss = rule.train_step(train.x[idx], train.target[idx], opt)
            loss_sum += loss.detach() * len(idx)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        _check_finite(float(loss_sum) / len(train.x), net, epoch, cfg, ckpt)
        lr = opt.param_groups[0]["lr"]
        sched.step()
        train_loss, train_acc = evaluate(net, train)
        test_loss, test_acc = evaluate(net, test)
        row = {"seed": seed, "epoch": epoch + 1, "train_loss": train_loss, "train_accuracy": train_acc,
               "test_loss": test_loss, "test_accuracy": test_acc, "lr": lr, "seconds": seconds,
               "samples_per_second": len(train.x) / seconds}
        row.update(epoch_figures(rule, net, probe, cfg.rule))
        rows.append(row)
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        _atomic_torch_save({"rule": rule.state_dict(), "optimizer": opt.state_dict(),
                            "scheduler": sched.state_dict(), "torch_rng": torch.get_rng_state(),
                            "cuda_rng": torch.cuda.get_rng_state() if device.type == "cuda" else None,
                            "shuffle_rng": gen.get_state(), "rows": rows, "epoch": epoch + 1}, ckpt)
        on_epoch(rows)
        bar.update(1)
        shown = f"{test_acc:.2f}%" if test_acc is not None else f"{test_loss:.4g}"
        bar.set_postfix(seed=seed, test=shown, samples_s=f"{row['samples_per_second']:.0f}")
    return rows, net, rule


def train_run(cfg: RunConfig, out: str | Path, resume: bool = False, progress: bool = True) -> dict:
    """Train ``cfg.seeds`` seeds and write the run folder ``out``; return the summary."""
    cfg.validate()
    out = Path(out)
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but torch sees no CUDA device; use --device cpu")
    device = torch.device(cfg.device)
    config_path = out / "config.json"
    if resume:
        if not config_path.exists():
            raise FileNotFoundError(f"--resume: {config_path} does not exist; start the run without --resume")
        saved = RunConfig.from_dict(json.loads(config_path.read_text()))
        if saved.to_dict() != cfg.to_dict():
            raise ValueError(f"--resume: the configuration differs from {config_path}; "
                             "resume with the same flags (or a new --out)")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(config_path, cfg.to_dict())

    data = load_dataset(cfg.dataset, data_dir=cfg.data_dir)
    train = to_split(data.x_train, data.y_train, data.n_classes, device)
    test = to_split(data.x_test, data.y_test, data.n_classes, device)
    sizes = [train.x.shape[1], *cfg.hidden, train.target.shape[1]]

    all_rows, nets = [], []
    with tqdm(total=cfg.epochs * cfg.seeds, unit="epoch", disable=not progress,
              desc=f"{cfg.rule} on {cfg.dataset}") as bar:
        for k in range(cfg.seeds):
            rows, net, _ = train_seed(cfg, cfg.seed + k, train, test, sizes, out, resume, bar,
                                      on_epoch=lambda rows: write_csv_rows(out / "metrics.csv", all_rows + rows))
            all_rows.extend(rows)
            nets.append(net)
    weights = [np_weights(n) for n in nets]
    summary = run_summary(cfg, all_rows, weights, data)
    atomic_write_json(out / "summary.json", summary)
    write_plots(out, all_rows, weights[0], summary)
    return summary


def np_weights(net: FCNetwork) -> list[np.ndarray]:
    return [W.detach().cpu().numpy() for W in net.weights]
