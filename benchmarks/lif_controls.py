"""A LIF rule beside its frozen-hidden control: same seed, samples and schedule.

The control is the same network trained the same way except that only the readout ``W_L``
learns: the hidden weights (and PFA's ``R``) are left out of the optimizer, so they keep their
seeded initial values while the rule still runs its presentations (the same input spikes and
dropout masks are drawn). ``hidden_gain = accuracy - control`` in points.

Per epoch it also records what the issue asks to watch for: the hidden rate (spikes per step),
the fraction of silent hidden neurons, the weight norms, the readout's logit spread and the
softmax's top probability (output saturation), all on the first 1,000 test samples.

    python benchmarks/lif_controls.py --rule dfa --dataset mnist --data-dir DIR --epochs 1 \
        [--lr 0.1] [--arch 1000] [--control] [--out results.json]

Without ``--lr`` and the other options it uses the rule's LIF defaults (``neurosim.rules``, as
``neurosim train --neuron lif``); the run is one seed, single-threaded unless ``--threads``.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from neurosim.config import RunConfig
from neurosim.datasets import load_dataset
from rate_models.data import epoch_batches, to_split
from rate_models.evaluation import evaluate
from rate_models.train import build


@torch.no_grad()
def statistics(net, x) -> dict:
    net.eval()
    net.reset_evaluation_noise()
    p = net.simulate(x)
    net.train()
    prob = torch.softmax(p.logits, -1)
    out = {f"weight_norm_l{l}": float(W.norm()) for l, W in enumerate(net.weights, start=1)}
    for l, r in enumerate(p.rates[1:], start=1):
        out[f"rate_l{l}"] = float(r.mean())
        out[f"silent_l{l}"] = float((r.sum(0) == 0).float().mean())
        out[f"saturated_l{l}"] = float((r.mean(0) > 0.9).float().mean())
    out["logit_std"] = float(p.logits.std(-1).mean())
    out["top_probability"] = float(prob.max(-1).values.mean())
    return out


def run(cfg: RunConfig, freeze: bool, log=print, train_samples: int | None = None) -> list[dict]:
    data = load_dataset(cfg.data.dataset, data_dir=cfg.data.data_dir)
    device = torch.device("cpu")
    n = train_samples or len(data.x_train)
    train = to_split(data.x_train[:n], data.y_train[:n], data.n_classes, device)
    test = to_split(data.x_test, data.y_test, data.n_classes, device)
    sizes = [train.x.shape[1], *cfg.network.hidden, train.target.shape[1]]
    net, rule, opt, sched = build(cfg, sizes, cfg.training.seed, device)
    if freeze:  # only the readout learns: the rule still fills every .grad, SGD moves W_L alone
        opt = torch.optim.SGD([net.weights[-1]], lr=cfg.training.lr, momentum=cfg.training.momentum,
                              weight_decay=cfg.training.weight_decay)
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, cfg.training.lr_milestones, cfg.training.lr_gamma)
    gen = torch.Generator().manual_seed(cfg.training.seed)
    rows = []
    for epoch in range(cfg.training.epochs):
        t0 = time.perf_counter()
        loss_sum = 0.0
        for idx in epoch_batches(len(train.x), cfg.training.batch_size, gen, device):
            loss_sum += float(rule.train_step(train.x[idx], train.target[idx], opt)) * len(idx)
        seconds = time.perf_counter() - t0
        sched.step()
        _, acc = evaluate(net, test)
        row = {"epoch": epoch + 1, "test_accuracy": acc, "train_loss": loss_sum / len(train.x),
               "seconds": seconds, **statistics(net, test.x[:1000])}
        rows.append(row)
        log(json.dumps(row))
    return rows


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rule", required=True)
    p.add_argument("--dataset", default="digits")
    p.add_argument("--data-dir")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--arch", type=lambda s: [int(v) for v in s.split("-")])
    p.add_argument("--lr", type=float)
    p.add_argument("--num-steps", type=int)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-samples", type=int, help="train on the first N samples only (scans)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any other RunConfig field, e.g. --set f_scale=0.2 (JSON values)")
    p.add_argument("--control", action="store_true", help="also train the frozen-hidden control")
    p.add_argument("--only-control", action="store_true")
    p.add_argument("--out")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    kw = {"neuron": "lif", "dataset": a.dataset, "data_dir": a.data_dir,
          "epochs": a.epochs, "seed": a.seed}
    for name in ("lr", "num_steps"):
        if getattr(a, name) is not None:
            kw[name] = getattr(a, name)
    if a.arch:
        kw["hidden"] = a.arch
    for item in a.set:
        key, value = item.split("=", 1)
        kw[key] = json.loads(value)
    cfg = RunConfig.for_rule(a.rule, **kw)
    cfg.validate()
    result = {"config": cfg.to_dict()}
    if not a.only_control:
        result["rule"] = run(cfg, freeze=False, train_samples=a.train_samples)
    if a.control or a.only_control:
        result["control"] = run(cfg, freeze=True, train_samples=a.train_samples)
    if "rule" in result and "control" in result:
        acc, ctl = result["rule"][-1]["test_accuracy"], result["control"][-1]["test_accuracy"]
        result.update(test_accuracy=acc, control_test_accuracy=ctl, hidden_gain=acc - ctl)
        print(f"{a.rule} {a.dataset}: {acc:.2f}% control {ctl:.2f}% gain {acc - ctl:+.2f}")
    if a.out:
        with open(a.out, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
