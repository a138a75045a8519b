"""The training loop: one seed, or a seed batch, on resident or streamed data, in one process
or under torchrun, with LIF or rate networks alike.

Its inputs are the model (:func:`rate_models.train.seed_rules`: the rule that trains, its
optimizer and scheduler, each seed's own rule) and a batch source: ``ResidentBatches``
(``rate_models.data``) or ``StreamedBatches`` (``rate_models.imagenet``). A batch source gives

* ``epoch(epoch, noise)``: ``(x, target)`` of this process's rows of every batch of an epoch
  (pointing ``noise`` at them and recording the process's share, ``rate_models.distributed``);
* ``evaluation(split)``: what :func:`rate_models.evaluation.evaluate` reads for ``"train"`` and
  ``"test"``, and ``evaluation_processes`` (the processes to sum over, or None);
* ``probe`` (the figures' batch), ``n_train`` (samples of one seed's epoch),
  ``batches_per_epoch``, ``input_dim`` and ``n_out`` (the network's input and output sizes),
  and ``shuffle_state`` / ``load_shuffle_state`` for the checkpoint.

Every epoch: train on the source's batches, step the schedule, evaluate each seed, check for
divergence (``rate_models.divergence``), write each seed's metrics row and figures
(``rate_models.evaluation``) and the checkpoint (``rate_models.checkpoints``), from which
``resume`` continues to the result of an uninterrupted run.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from neurosim.config import RunConfig
from rate_models.checkpoints import checkpoint_path, restore_checkpoint, save_checkpoint
from rate_models.distributed import Processes
from rate_models.divergence import check_finite
from rate_models.evaluation import epoch_figures, evaluate, metrics_row
from rate_models.seed_batch import unstack_into


def frozen_parameters(rule, opt) -> list[torch.nn.Parameter]:
    """The rule's parameters that ``opt`` does not train (all but the readout's when frozen)."""
    trained = {id(p) for group in opt.param_groups for p in group["params"]}
    return [p for p in rule.parameters() if id(p) not in trained]


def train_seeds(cfg: RunConfig, seeds: list[int], model: tuple, data, out: Path, resume: bool, bar,
                on_epoch=lambda rows: None, procs: Processes | None = None) -> tuple[list[dict], list]:
    """Train ``seeds`` (one seed, or with ``cfg.training.seed_batch`` several as one batched model) on the
    batch source ``data`` into run folder ``out``; return their per-epoch rows (seed by seed) and
    each seed's trained network.

    ``model`` is :func:`rate_models.train.seed_rules`'s ``(rule, opt, sched, views)``.
    ``on_epoch(rows)`` is called after every epoch's checkpoint (the run writes metrics.csv
    there). In a data-parallel run (``procs``) every process trains its share of each batch and
    process 0 alone writes the checkpoint. The rows of a seed batch share the batched epoch's
    ``seconds``; ``samples_per_second`` counts every trained sample of the epoch (all seeds, all
    processes).
    """
    procs = procs or Processes()
    rule, opt, sched, views = model
    net = rule.net
    device = next(net.parameters()).device
    # parameters the rule may write .grad on but that never train
    frozen = frozen_parameters(rule, opt) if cfg.training.freeze_hidden else []
    procs.attach(opt)
    ckpt = checkpoint_path(out, seeds, cfg.training.seed_batch)
    rows, start = {s: [] for s in seeds}, 0
    if resume and ckpt.exists():
        rows, start = restore_checkpoint(ckpt, rule, opt, sched, device, data, seeds)
        bar.update(start * len(seeds) * data.n_train)
    elif cfg.mirror.pre_mirror_epochs and not cfg.training.freeze_hidden:
        rule.pre_train(cfg.mirror.pre_mirror_epochs * data.batches_per_epoch, cfg.training.batch_size)

    for epoch in range(start, cfg.training.epochs):
        decay = cfg.training.weight_decay
        if epoch > 0 and cfg.training.weight_decay_after_first_epoch is not None:
            decay = cfg.training.weight_decay_after_first_epoch
        for i, group in enumerate(opt.param_groups):  # checkpoints from before "decayed": group 0
            if group.get("decayed", i == 0):
                group["weight_decay"] = decay
        net.train()
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        loss_sum = torch.zeros(len(seeds) if cfg.training.seed_batch else (), device=device)
        for x, target in data.epoch(epoch, net.noise):
            rows_here = x.shape[-2]
            loss = rule.train_step(x, target, opt)
            for p in frozen:
                p.grad = None
            loss_sum += loss.detach().float() * rows_here
            bar.update(len(seeds) * round(rows_here / procs.fraction))
        step_loss = [total / data.n_train for total in procs.sum(loss_sum).reshape(-1).tolist()]
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        if cfg.training.seed_batch:
            unstack_into(rule, views)
        lr = opt.param_groups[0]["lr"]
        sched.step()
        for s, r, s_loss in zip(seeds, views, step_loss):
            train = evaluate(r.net, data.evaluation("train"), data.evaluation_processes)
            check_finite(train[0], r.net, epoch, cfg, ckpt, rows[s][-1] if rows[s] else None, s_loss)
            test = evaluate(r.net, data.evaluation("test"), data.evaluation_processes)
            row = metrics_row(s, epoch + 1, train, test, s_loss, lr, seconds, len(seeds) * data.n_train)
            row.update(epoch_figures(r, r.net, data.probe, cfg.rule))
            rows[s].append(row)
        if procs.writer:
            save_checkpoint(ckpt, rule, opt, sched, device, data, rows, epoch + 1)
            on_epoch([row for s in seeds for row in rows[s]])
        shown = f"{test[1]:.2f}%" if test[1] is not None else f"{test[0]:.4g}"
        bar.set_postfix(seed=seeds[-1], epoch=f"{epoch + 1}/{cfg.training.epochs}", test=shown)
    return [row for s in seeds for row in rows[s]], [r.net for r in views]
