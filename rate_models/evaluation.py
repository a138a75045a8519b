"""What an epoch measures: loss and accuracy of a network on a split, the figures on a probe
batch (alignment angles, weight norms, the angle to BP's update, LIF spike statistics) and the
metrics row written to ``metrics.csv``.

Evaluation runs in full precision, never under the rule's bf16 autocast (``--amp bf16`` applies
to the training passes only): the weights are float32, and the measured loss and accuracy are
those of these weights rather than of a bf16 rounding of the passes, on resident and streamed
data alike.
"""

from __future__ import annotations

from typing import Iterable

import torch

from neurosim.metrics import angle_deg
from rate_models.data import TensorSplit
from rate_models.distributed import Processes
from rate_models.rules.gradient import bp_hidden_updates

EVALUATION_BATCH = 4096  # rows per forward pass when a whole resident split is evaluated


def split_batches(split: TensorSplit, size: int = EVALUATION_BATCH) -> list[TensorSplit]:
    """``split`` in consecutive batches of ``size`` rows (views, no copies)."""
    return [TensorSplit(split.x[i:i + size], split.target[i:i + size],
                        None if split.labels is None else split.labels[i:i + size])
            for i in range(0, len(split.x), size)]


@torch.no_grad()
def evaluate(net, data: TensorSplit | Iterable[TensorSplit],
             procs: Processes | None = None) -> tuple[float, float | None]:
    """Mean loss and accuracy (percent; None for regression) on a split, or on the batches of
    one, in full precision and without dropout (a LIF network's rate encoder restarts its
    evaluation generator: the same spikes every epoch). With ``procs`` the batches are this
    process's share and the sums are taken over the processes."""
    if isinstance(data, TensorSplit):
        data = split_batches(data)
    net.eval()
    if hasattr(net, "reset_evaluation_noise"):
        net.reset_evaluation_noise()
    loss_sum, correct, n, classified = 0.0, 0, 0, False
    for b in data:
        a = net(b.x)
        loss_sum += float(net.loss_from_logits(a, b.target)) * len(b.x)
        if b.labels is not None:
            classified = True
            correct += int((a.argmax(1) == b.labels).sum())
        n += len(b.x)
    net.train()
    if procs is not None and procs.world > 1:
        device = next(net.parameters()).device
        loss_sum, correct, n = procs.sum(torch.tensor([loss_sum, correct, n], dtype=torch.float64,
                                                      device=device)).tolist()
    return loss_sum / n, (100.0 * correct / n if classified else None)


def epoch_figures(rule, net, probe: TensorSplit, rule_name: str) -> dict:
    """Alignment angles, weight norms and the angle to BP's hidden-layer update on a probe batch."""
    fig = dict(rule.alignment())
    for l, W in enumerate(net.weights, start=1):
        fig[f"weight_norm_l{l}"] = float(W.detach().norm())
    spiking = hasattr(net, "reset_evaluation_noise")
    if spiking:  # LIF networks: spike statistics, BPTT's gradient as the reference, same spikes
        from rate_models.spiking.lif import spike_statistics
        from rate_models.spiking.rules import bptt_hidden_updates

        fig.update(spike_statistics(net, probe.x, rule.cfg.lif.dt))
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


def metrics_row(seed: int, epoch: int, train: tuple[float, float | None], test: tuple[float, float | None],
                step_loss: float, lr: float, seconds: float, samples: int) -> dict:
    """The ``metrics.csv`` row of one seed after ``epoch`` epochs (1-based): evaluated training
    and test loss and accuracy, the mean loss of the epoch's training steps, the learning rate
    the epoch trained with, its wall-clock seconds and trained ``samples`` per second."""
    return {"seed": seed, "epoch": epoch, "train_loss": train[0], "train_accuracy": train[1],
            "test_loss": test[0], "test_accuracy": test[1], "train_step_loss": step_loss,
            "lr": lr, "seconds": seconds, "samples_per_second": samples / seconds}
