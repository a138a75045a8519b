"""Figures of a connectivity analysis (Agg canvas, written atomically through
``neurosim.plotting``): pair types, triad ratios (as Song et al. 2005, Fig. 4B), the weight
histogram with its lognormal fit, and the reciprocal weights."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from neurosim.connectivity.graph import Graph
from neurosim.connectivity.references import Reference
from neurosim.connectivity.stats import reciprocal_weights
from neurosim.connectivity.triads import TRIAD_NAMES, expected_pair_null
from neurosim.plotting import _new_figure, _save

_KINDS = ("unconnected", "unidirectional", "bidirectional")


def plot_pair_types(result: dict, reference: Reference, path: str | os.PathLike) -> Path:
    """Fractions of pairs of each kind, and the bidirectional share of connected pairs, for the
    network, its Erdős–Rényi chance and the reference."""
    fig, (ax, ax2) = _new_figure(2)
    total = result["pairs"]["total"]
    bars = {"network": [result["pairs"][k] / total for k in _KINDS]}
    p = result["connection_probability"] or 0.0
    bars["chance (same p)"] = [(1 - p) ** 2, 2 * p * (1 - p), p * p]
    if reference.pairs:
        ref_total = sum(reference.pairs.values())
        bars[reference.name] = [reference.pairs[k] / ref_total for k in _KINDS]
    x = np.arange(3)
    width = 0.8 / len(bars)
    for k, (label, values) in enumerate(bars.items()):
        ax.bar(x + k * width, values, width, label=label)
    ax.set_xticks(x + width * (len(bars) - 1) / 2, _KINDS)
    ax.set_yscale("log")
    ax.set_ylabel("fraction of neuron pairs")
    ax.legend(fontsize="small")
    share = {"network": result["bidirectional_fraction_of_connected"],
             "chance": p / (2 - p) if p else None}
    share.update({f"{reference.name}": f.value for f in reference.figures
                  if f.key == "bidirectional_fraction_of_connected"})
    names = [k for k, v in share.items() if v is not None]
    ax2.bar(names, [share[k] for k in names], color=[f"C{i}" for i in range(len(names))])
    ax2.set_ylabel("bidirectional / connected pairs")
    ax2.set_ylim(0, 1)
    return _save(fig, path)


def plot_triad_ratios(result: dict, reference: Reference, path: str | os.PathLike) -> Path:
    """Observed / expected count per triad class under the pair null (log scale), as Song et al.
    2005 Fig. 4B; the reference's ratios beside the network's."""
    fig, (ax,) = _new_figure(1, width=9)
    x = np.arange(len(TRIAD_NAMES))
    c = result["triad_census"]
    net = [c[k]["observed"] / c[k]["expected_pair_null"] if c[k]["expected_pair_null"] else np.nan
           for k in TRIAD_NAMES]
    series = {"network": net}
    if reference.triad_census and reference.pairs:
        total = sum(reference.triad_census.values())
        exp = expected_pair_null(3, **reference.pairs)
        series[reference.name] = [reference.triad_census[k] / (exp[k] * total) for k in TRIAD_NAMES]
    for k, (label, values) in enumerate(series.items()):
        vals = np.array(values, dtype=float)
        ax.scatter(x + 0.15 * k, np.where(vals > 0, vals, np.nan), label=label, zorder=3)
    ax.axhline(1, color="0.5", ls=":")
    ax.set_yscale("log")
    ax.set_xticks(x, TRIAD_NAMES, rotation=45)
    ax.set_ylabel("observed / expected (pair null)")
    ax.set_title("triad census relative to Song's pair-based null")
    ax.legend(fontsize="small")
    return _save(fig, path)


def plot_weight_histogram(graph: Graph, result: dict, path: str | os.PathLike) -> Path:
    """Histogram of ln|w| per sign with the lognormal fit's density (a normal in ln w)."""
    fig, (ax,) = _new_figure(1)
    w = graph.W.data
    for sign, name, color in ((1, "excitatory", "C0"), (-1, "inhibitory", "C3")):
        mags = np.abs(w[np.sign(w) == sign])
        fit = result["weights"].get(f"lognormal_{name}", {}).get("all")
        if not len(mags):
            continue
        logs = np.log(mags)
        ax.hist(logs, bins=60, density=True, alpha=0.5, color=color, label=f"{name} (n = {len(mags):,})")
        if fit:
            t = np.linspace(logs.min(), logs.max(), 200)
            pdf = np.exp(-0.5 * ((t - fit["mu"]) / fit["sigma"]) ** 2) / (fit["sigma"] * math.sqrt(2 * math.pi))
            ax.plot(t, pdf, color=color, lw=1.5,
                    label=f"lognormal fit μ = {fit['mu']:.2f}, σ = {fit['sigma']:.2f}")
    ax.set_xlabel("ln |w|")
    ax.set_ylabel("density")
    ax.legend(fontsize="small")
    return _save(fig, path)


def plot_reciprocal_weights(graph: Graph, result: dict, path: str | os.PathLike) -> Path:
    """``|w(i -> j)|`` against ``|w(j -> i)|`` over bidirectional pairs (log axes), with Pearson r."""
    fig, (ax,) = _new_figure(1, width=4.5, height=4.2)
    _, _, x, y = reciprocal_weights(graph)
    corr = result["reciprocal_weight_correlations"]
    if len(x):
        ax.scatter(np.abs(x), np.abs(y), s=4, alpha=0.4)
        ax.set_xscale("log")
        ax.set_yscale("log")
    r_log, r_lin = corr["log"]["r"], corr["linear"]["r"]
    fmt = (lambda r: "—" if r is None else f"{r:.2f}")
    ax.set_title(f"{len(x):,} bidirectional pairs; r(ln) = {fmt(r_log)}, r(lin) = {fmt(r_lin)}",
                 fontsize="small")
    ax.set_xlabel("|w(i → j)|, i < j")
    ax.set_ylabel("|w(j → i)|")
    return _save(fig, path)


def write_plots(graph: Graph, result: dict, reference: Reference, folder: str | os.PathLike) -> list[Path]:
    folder = Path(folder)
    return [plot_pair_types(result, reference, folder / "pair_types.png"),
            plot_triad_ratios(result, reference, folder / "triad_ratios.png"),
            plot_weight_histogram(graph, result, folder / "weight_histogram.png"),
            plot_reciprocal_weights(graph, result, folder / "reciprocal_weights.png")]
