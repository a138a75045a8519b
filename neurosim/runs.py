"""Run records: the summary of a finished run and its plots.

``summary.json`` holds at least ``rule``, ``dataset``, ``test_accuracy`` (percent, mean over seeds
of the last epoch), ``test_accuracy_std`` (sample std over seeds, 0 for one seed), ``per_seed``,
``seconds_per_epoch`` (training time only, mean over seeds and epochs), the slowness fit of the
mean test curve (PEPITA Appendix C) and Normal vs Student-t fits of the output-layer weights
(PEPITA Appendix H), the package version and git hash. ``freeze_hidden`` marks a run whose
hidden layers were frozen; a run trained with its frozen-hidden control (``--control``) adds
``control_test_accuracy`` (and its std), ``hidden_gain`` (test accuracy minus the control's, in
percentage points) and ``control_folder``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

import neurosim
from neurosim.metrics import DistributionFits, slowness_fit, weight_distribution_fits


def git_hash() -> str | None:
    """The commit of the neurosim checkout, or None when it is not a git checkout."""
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, text=True,
                              capture_output=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def _mean_curve(rows: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    epochs = sorted({r["epoch"] for r in rows})
    return np.array(epochs, float), np.array([np.mean([r[key] for r in rows if r["epoch"] == e])
                                              for e in epochs])


def _slowness(cfg, rows, n_classes: int) -> dict | None:
    """Plateau fit acc = a_max t/(s + t) on the mean test curve up to the first LR decay, with the
    chance point (0, 100/C) added, as in PEPITA Appendix C. None when it cannot be fitted."""
    if not n_classes:
        return None
    epochs, acc = _mean_curve(rows, "test_accuracy")
    first_decay = min([m for m in cfg.training.lr_milestones if m > 0], default=None)
    try:
        fit = slowness_fit(epochs, acc, chance=100.0 / n_classes, max_epoch=first_decay)
    except (ValueError, RuntimeError) as err:
        return {"error": str(err)}
    # standard errors are undefined (inf) when there are as many points as parameters
    return {k: (float(v) if np.isfinite(v) else None) for k, v in fit.__dict__.items()}


def run_summary(cfg, rows: list[dict], weights: list[list[np.ndarray]], data, control: dict | None = None) -> dict:
    """The summary of a run from its per-epoch rows and each seed's final weights; ``control``:
    the summary of its frozen-hidden control, trained from the same seeds."""
    last = max(r["epoch"] for r in rows)
    final = [r for r in rows if r["epoch"] == last]
    per_seed = [{"seed": r["seed"], "test_accuracy": r["test_accuracy"], "test_loss": r["test_loss"],
                 "train_accuracy": r["train_accuracy"], "train_loss": r["train_loss"]} for r in final]
    acc = [r["test_accuracy"] for r in final]
    classification = bool(data.n_classes)
    summary = {
        "rule": cfg.rule,
        "dataset": cfg.data.dataset,
        "arch": ("-".join(str(n) for n in [data.input_dim, *cfg.network.hidden, data.n_classes or data.y_train.shape[-1]])
                 if cfg.network.arch == "fc" else cfg.network.arch) + (" LIF" if cfg.network.neuron == "lif" else ""),
        "epochs": last,
        "seeds": len(final),
        "test_accuracy": float(np.mean(acc)) if classification else None,
        "test_accuracy_std": (float(np.std(acc, ddof=1)) if len(acc) > 1 else 0.0) if classification else None,
        "test_loss": float(np.mean([r["test_loss"] for r in final])),
        "per_seed": per_seed,
        "seconds_per_epoch": float(np.mean([r["seconds"] for r in rows])),
        "final_figures": {k: float(np.mean([r[k] for r in final if k in r]))
                          for k in final[0] if k.endswith("_deg") or k.startswith("path_norm")},
        "slowness": _slowness(cfg, rows, data.n_classes),
        # LIF networks (--neuron lif): hidden rates (Hz) and silent fractions on the probe batch
        "spike_statistics": {k: float(np.mean([r[k] for r in final]))
                             for k in final[0] if k.startswith(("rate_l", "silent_fraction_l"))} or None,
        "weight_distribution_output_layer": weight_distribution_fits(weights[0][-1]).__dict__,
        "weight_distribution_first_layer": weight_distribution_fits(weights[0][0]).__dict__,
        "freeze_hidden": bool(getattr(cfg.training, "freeze_hidden", False)),
        "preset": cfg.preset,
        "neurosim_version": neurosim.__version__,
        "git_hash": git_hash(),
    }
    if control is not None:
        summary.update(control_fields(summary, control))
    return summary


def control_fields(summary: dict, control: dict) -> dict:
    """What a run's summary says about its frozen-hidden control (``control``'s summary)."""
    fields = {"control_test_accuracy": control["test_accuracy"],
              "control_test_accuracy_std": control["test_accuracy_std"],
              "control_test_loss": control["test_loss"],
              "control_per_seed": [{"seed": r["seed"], "test_accuracy": r["test_accuracy"]}
                                   for r in control["per_seed"]],
              "hidden_gain": None, "control_folder": "control"}
    if summary["test_accuracy"] is not None and control["test_accuracy"] is not None:
        fields["hidden_gain"] = summary["test_accuracy"] - control["test_accuracy"]
    return fields


def write_plots(out: Path, rows: list[dict], weights: list[np.ndarray], summary: dict,
                control_rows: list[dict] | None = None) -> list[Path]:
    """Learning curves (band over seeds; with ``control_rows`` the frozen-hidden control's test
    curve too), alignment angles, output-weight histogram with fits."""
    from neurosim.plotting import plot_alignment, plot_learning_curves, plot_weight_histogram

    title = f"{summary['rule']} on {summary['dataset']} ({summary['arch']})"
    if summary.get("freeze_hidden"):
        title += ", hidden frozen"
    paths = [plot_learning_curves(rows, out / "learning_curves.png", title=title, control_rows=control_rows),
             plot_alignment(rows, out / "alignment.png"),
             plot_weight_histogram(weights[-1], DistributionFits(**summary["weight_distribution_output_layer"]),
                                   out / "output_weights.png")]
    return [p for p in paths if p is not None]
