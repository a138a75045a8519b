"""Figures of a circuit experiment: raster, compartment traces, update scatter, learning curve."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.ticker import MaxNLocator

from neurosim.plotting import _new_figure, _save

RASTER_SAMPLES = 3  # samples shown in the raster and the compartment traces


def _window(circuit) -> float:
    """Seconds of the first ``RASTER_SAMPLES`` probe samples."""
    return RASTER_SAMPLES * circuit.sample_duration


def _phase_lines(ax, circuit) -> None:
    """Dashed lines at sample starts, dotted at phase-2 starts (seconds)."""
    T, phase = circuit.sample_duration, circuit.params.phase_steps * circuit.params.dt
    for s in range(RASTER_SAMPLES + 1):
        ax.axvline(s * T, color="0.3", ls="--", lw=0.8)
        if circuit.n_phases == 2 and s < RASTER_SAMPLES:
            ax.axvline(s * T + phase, color="0.5", ls=":", lw=0.8)


def plot_raster(spikes: dict, circuit, path: Path) -> Path:
    """Spikes of every population over the first probe samples, one band per group;
    ``spikes`` maps a group name to ``(times in s, neuron indices, group size)``."""
    fig, (ax,) = _new_figure(1, width=9.0, height=6.0)
    offset, ticks, labels = 0, [], []
    end = _window(circuit)
    for name, (t, i, n) in spikes.items():
        keep = t < end
        ax.plot(t[keep], i[keep] + offset, "|", ms=2, mew=0.5)
        ticks.append(offset + n / 2)
        labels.append(f"{name} ({n})")
        offset += n
        ax.axhline(offset, color="0.8", lw=0.5)
    _phase_lines(ax, circuit)
    ax.set_yticks(ticks, labels)
    ax.set_xlabel("time (s)")
    ax.set_title(f"{circuit.rule} circuit: spikes of every population, {RASTER_SAMPLES} samples")
    return _save(fig, path)


def plot_compartments(traces: dict, circuit, path: Path) -> Path:
    """Soma and dendrites of hidden neuron 0 through the phases of the first probe samples: basal
    and apical potentials, the somatic potential (spiking), the phase-1 store ``r1`` and the
    phase-2 integral ``r2``. ``traces`` maps ``t`` and each variable to an array."""
    fig, axes = _new_figure(2, width=6.0, height=3.8)
    t = traces["t"]
    keep = t < _window(circuit)
    for name in ("v_b", "v_a", "u"):
        if name in traces:
            axes[0].plot(t[keep], traces[name][keep], lw=0.8, label=name)
    axes[0].set_title("compartment potentials (hidden neuron 0)")
    for name, label in (("r1", "r1: soma store (phase-1 mean rate)"),
                        ("r2", "r2: dendrite (phase-2 mean rate)")):
        axes[1].plot(t[keep], traces[name][keep], lw=1.0, label=label)
    axes[1].set_title("stored window means")
    for ax in axes:
        _phase_lines(ax, circuit)
        ax.set_xlabel("time (s)")
        ax.legend(fontsize=7)
    return _save(fig, path)


def plot_update_scatter(circuit_update: np.ndarray, rate_update: np.ndarray, path: Path,
                        summary: dict) -> Path:
    """Each synapse's W_1 update in the circuit against the rate rule's, summed over the probe
    samples at the initial weights."""
    fig, (ax,) = _new_figure(1, width=4.8, height=4.5)
    a, b = rate_update.ravel(), circuit_update.ravel()
    ax.plot(a, b, ".", ms=2, alpha=0.4)
    lim = float(max(np.abs(a).max(), np.abs(b).max(), 1e-12))
    ax.plot([-lim, lim], [-lim, lim], color="0.3", lw=0.8)
    for axis in (ax.xaxis, ax.yaxis):  # five ticks, one shared power of ten per axis
        axis.set_major_locator(MaxNLocator(5))
    ax.ticklabel_format(style="sci", scilimits=(-2, 3), useMathText=True)
    ax.set_xlabel("rate rule: summed dW_1")
    ax.set_ylabel(f"circuit ({summary['mode']}): summed dW_1")
    angle = summary["update_angle_deg"]
    ax.set_title(f"{summary['rule']}: angle " + ("undefined (no W1 update)" if angle is None
                                                  else f"{angle:.1f} deg"))
    return _save(fig, path)


def plot_circuit_learning_curve(curve: list[dict], path: Path, summary: dict) -> Path:
    """Test accuracy (and online training accuracy, and the frozen-hidden control's test
    accuracy when it ran) against training samples seen."""
    fig, (ax,) = _new_figure(1)
    seen = [row["train_samples_seen"] for row in curve]
    ax.plot(seen, [row["test_accuracy"] for row in curve], "o-", label="test")
    ax.plot(seen, [row["online_train_accuracy"] for row in curve], "s--", label="online train")
    if "control_test_accuracy" in curve[0]:
        ax.plot(seen, [row["control_test_accuracy"] for row in curve], "^:",
                label="test, frozen-hidden control")
    ax.set_xlabel("training samples seen")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"{summary['rule']} circuit ({summary['mode']}) on {summary['dataset']}")
    ax.legend()
    return _save(fig, path)
