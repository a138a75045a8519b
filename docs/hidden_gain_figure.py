"""Draw ``docs/_static/hidden_gain.png``, the README's and the results page's figure.

Each bar pair is one measured run beside its frozen-hidden control (same seed, samples and
schedule, only the readout learning), read from ``benchmarks/results/circuit_controls.json``
(Brian2 circuits at their defaults, ``"defaults"``: 784-256-10, one MNIST epoch; the interneuron
variant's from ``"interneuron_rate_1e-3"``, its defaults since 2026-12-06) and ``benchmarks/results/lif_controls.json``
(LIF networks, 784-1024-10, one MNIST epoch, each at its default lr: the window form's rows,
DFA's, sDFA's and DRTP's at 2e-4 from ``"constant_signal_rates"``, PEPITA's from
``"pepita_defaults"``). Run ``python docs/hidden_gain_figure.py`` after either file changes.
"""

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def rows():
    """(panel title, [(label, accuracy, control accuracy)]) for the two panels."""
    circuit_file = json.loads((RESULTS / "circuit_controls.json").read_text())
    circuits = [r for r in circuit_file["defaults"]["rows"]
                if r["dataset"] == "mnist" and r["rule"] != "pepita-interneuron"]
    circuits += [r for r in circuit_file["interneuron_rate_1e-3"]["rows"]
                 if r["dataset"] == "mnist" and r["mode"] == "spiking" and r["seed"] == 0]
    lif_file = json.loads((RESULTS / "lif_controls.json").read_text())
    # DFA, sDFA and DRTP at their default lr 2e-4 (measured with their own controls), PEPITA at its
    # LIF defaults ("pepita_defaults"), PFA and BPTT at 5e-4
    lif = [r for r in lif_file["rows"] if r["rule"] not in ("dfa", "sdfa", "drtp", "pepita")]
    lif += [r for r in lif_file["constant_signal_rates"]["rows"] if r["lr"] == 0.0002]
    lif += lif_file["pepita_defaults"]["rows"]
    return [
        ("Brian2 circuits at their defaults (spiking), 784-256-10, 1 MNIST epoch",
         [(r["rule"], r["test_accuracy"], r["control_test_accuracy"]) for r in circuits]),
        ("LIF networks, 784-1024-10, 1 MNIST epoch",
         [(f"{r['rule']} (lr {r['lr']:g})", r["test_accuracy"], r["control_test_accuracy"]) for r in lif
          if r["dataset"] == "mnist" and r.get("update_form", "window") == "window"]),
    ]


def main() -> None:
    panels = rows()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for ax, (title, bars) in zip(axes, panels):
        x = list(range(len(bars)))
        ax.vlines(x, [b[2] for b in bars], [b[1] for b in bars], color="0.6")
        ax.plot(x, [b[2] for b in bars], "o", color="tab:gray", label="frozen-hidden control")
        ax.plot(x, [b[1] for b in bars], "o", color="tab:blue", label="trained")
        ax.set_xticks(x, [b[0] for b in bars], rotation=20, ha="right")
        ax.set_xlim(-0.5, len(bars) - 0.5)
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("test accuracy (%)")
    axes[1].legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(ROOT / "docs" / "_static" / "hidden_gain.png", dpi=110)


if __name__ == "__main__":
    main()
