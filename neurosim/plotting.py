"""PNG figures of learning curves, alignment angles and weight histograms.

matplotlib is imported lazily and only through the object API with the Agg
canvas, so the global backend is never touched. Files are written atomically
(temporary file in the same folder, then os.replace); each function returns the
path written. Accuracies are plotted as stored (the project stores percent).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from neurosim.io import write_atomically
from neurosim.metrics import DistributionFits, mean_std


def _new_figure(ncols: int, width: float = 5.0, height: float = 3.8):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(1, ncols, squeeze=False)[0]


def _save(fig, path: str | os.PathLike) -> Path:
    return write_atomically(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))


def _epoch_axis(ax) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _to_float(value) -> float:
    """CSV cell -> float; empty/missing cells -> nan."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return float("nan")
    return float(value)


def _seed_band(rows: Sequence[Mapping], column: str):
    """Epochs with >= 1 finite value of ``column`` and the mean / std over seeds there."""
    by_epoch: dict[float, list[float]] = {}
    for row in rows:
        if column in row:
            by_epoch.setdefault(_to_float(row["epoch"]), []).append(_to_float(row[column]))
    stats = [(epoch, *mean_std(vals)) for epoch, vals in sorted(by_epoch.items())]
    stats = [s for s in stats if s[3] > 0]
    if not stats:
        return None
    epoch, mean, std, _ = map(np.array, zip(*stats))
    return epoch, mean, std


def _plot_band(ax, rows, column: str, label: str, color=None, ls="-", floor: float | None = None) -> None:
    """Mean over seeds as a line, ± 1 std as a band (clipped at ``floor``: a loss is never < 0)."""
    band = _seed_band(rows, column)
    if band is None:
        return
    epoch, mean, std = band
    (line,) = ax.plot(epoch, mean, label=label, color=color, lw=1.6, ls=ls)
    low = mean - std if floor is None else np.maximum(mean - std, floor)
    ax.fill_between(epoch, low, mean + std, color=line.get_color(), alpha=0.2, lw=0)


# metric columns -> legend words ("{0}": the layer number)
_ANGLE_WORDS = (
    (r"bp_update_angle_l(\d+)", "layer {0}: update vs backprop's gradient"),
    (r"weight_alignment_l(\d+)", "layer {0}: forward weights vs feedback B"),
    (r"path_alignment_l(\d+)", "layer {0}: forward weights vs feedback path R B"),
    (r"angle_F_W", "F vs product of forward weights"),
    (r"update_angle", "circuit update vs rate rule's"),
    (r"alignment_angle", "forward vs feedback weights"),
)


def describe_column(column: str) -> str:
    """Words for a metric column in a legend, e.g. ``bp_update_angle_l1_deg`` -> "layer 1: update
    vs backprop's gradient"; unknown columns lose their unit suffix and underscores."""
    import re

    name = column.removesuffix("_deg")
    for pattern, words in _ANGLE_WORDS:
        m = re.fullmatch(pattern, name)
        if m:
            return words.format(*m.groups())
    return name.replace("_", " ")


def _n_seeds(rows: Sequence[Mapping]) -> int:
    return len({row.get("seed") for row in rows})


def plot_learning_curves(rows: Sequence[Mapping], path: str | os.PathLike, title: str | None = None,
                         control_rows: Sequence[Mapping] | None = None) -> Path:
    """Accuracy (%) and loss vs epoch, train and test: mean over seeds (line) ± 1 std (band).

    ``rows`` are the dicts of a run's metrics.csv (strings are converted); ``control_rows``, those
    of its frozen-hidden control, add the control's test curve (dashed).
    """
    fig, (ax_acc, ax_loss) = _new_figure(2)
    for ax, quantity, ylabel, floor in ((ax_acc, "accuracy", "accuracy (%)", None),
                                        (ax_loss, "loss", "loss", 0.0)):
        for split, color in (("train", "tab:blue"), ("test", "tab:orange")):
            _plot_band(ax, rows, f"{split}_{quantity}", f"{split} set", color, floor=floor)
        if control_rows:
            _plot_band(ax, control_rows, f"test_{quantity}", "test set, hidden layers frozen (control)",
                       "0.35", ls="--", floor=floor)
        _epoch_axis(ax)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"{title or 'learning curves'} (mean ± std over {_n_seeds(rows)} seed(s))")
    return _save(fig, path)


def plot_alignment(rows: Sequence[Mapping], path: str | os.PathLike) -> Path | None:
    """Every ``*_deg`` column vs epoch, mean ± std over seeds; None (no file) if there is none."""
    columns = list(dict.fromkeys(k for row in rows for k in row if k.endswith("_deg")))
    if not columns:
        return None
    fig, (ax,) = _new_figure(1, width=6.5)
    for column in columns:
        _plot_band(ax, rows, column, describe_column(column))
    ax.axhline(90, color="0.5", ls=":", lw=1)
    _epoch_axis(ax)
    ax.set_ylabel("angle (degrees)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    ax.set_title(f"alignment angles (mean ± std over {_n_seeds(rows)} seed(s))")
    return _save(fig, path)


def plot_weight_histogram(weights, fits: DistributionFits, path: str | os.PathLike) -> Path:
    """Weight density histogram with the fitted Normal and Student-t pdfs.

    Left: central 99.8% of the weights, linear scale. Right: full range, log
    scale (tails). Densities are relative to all weights.
    """
    from scipy import stats

    x = np.asarray(weights, dtype=float).ravel()
    fig, axes = _new_figure(2)
    for ax, lo_hi, log in ((axes[0], np.quantile(x, [0.001, 0.999]), False), (axes[1], (x.min(), x.max()), True)):
        counts, edges = np.histogram(x, bins=100, range=tuple(lo_hi))
        density = counts / (x.size * np.diff(edges))
        ax.stairs(density, edges, fill=True, color="0.75", label=f"weights (n={x.size})")
        grid = np.linspace(edges[0], edges[-1], 400)
        normal = stats.norm.pdf(grid, fits.normal_mean, fits.normal_std)
        student = stats.t.pdf(grid, fits.t_df, fits.t_loc, fits.t_scale)
        ax.plot(grid, normal, label=f"Normal (AIC {fits.aic_normal:.5g})")
        ax.plot(grid, student, label=f"Student-t, df={fits.t_df:.3g} (AIC {fits.aic_t:.5g})")
        ax.set_xlabel("weight")
        ax.set_ylabel("density")
        if log:
            ax.set_yscale("log")
            ax.set_ylim(0.5 * density[density > 0].min(), 2 * max(density.max(), normal.max(), student.max()))
    axes[0].legend(fontsize="small")
    axes[0].set_title("central 99.8%")
    axes[1].set_title("full range, log scale")
    fig.suptitle(f"weight distribution: {fits.preferred} preferred (lower AIC)")
    return _save(fig, path)
