"""Plots of a ``neurosim theory afa`` run, as S Fig. 2b–c and Fig. 7: theory as lines,
simulations as mean ± std over seeds (points with error bars), on logarithmic time axes."""

from __future__ import annotations

from pathlib import Path


from neurosim.plotting import _new_figure, _save

MARKERS = {"afa": ("x", "tab:purple"), "pepita": ("o", "tab:blue")}
ANGLES = {"angle_W2_f_deg": ("W₂ vs f = W₁F/D", "tab:orange"),
          "angle_W2_teacher_deg": ("W₂ vs W̃₂", "darkgreen"),
          "angle_W2_matched_deg": ("W₂ vs closest degenerate solution", "yellowgreen")}


def _points(ax, t, mean, std, rule, color=None, label=None):
    marker, c = MARKERS[rule]
    ax.errorbar(t, mean, yerr=std, fmt=marker, ms=4, color=color or c, alpha=0.8, lw=0.8,
                label=label or f"{rule} simulation")


def plot_learning_curves(t, theory: dict, sims: dict, path: Path, title: str) -> Path:
    """``ε_g(t)`` on log–log axes (S Fig. 2b). ``theory``/``sims[rule]`` map column names to
    curves; a simulation's ``name`` is ``(mean, std)``."""
    fig, (ax,) = _new_figure(1, width=6.0, height=4.2)
    pos = t > 0
    ax.loglog(t[pos], theory["eps_g"][pos], "k-", lw=1.5, label="AFA theory (eqs. 22–24)")
    for rule, curves in sims.items():
        mean, std = curves["eps_g"]
        _points(ax, t[pos], mean[pos], std[pos], rule)
    ax.set_xlabel("t = μ/D")
    ax.set_ylabel("generalization error ε_g")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_alignment(t, theory: dict, sims: dict, path: Path, title: str) -> Path:
    """The angles of S Fig. 2c and the norm of the adaptive feedback (S Fig. 7)."""
    fig, (ax, axf) = _new_figure(2, width=5.5, height=4.2)
    pos = t > 0
    for key, (label, color) in ANGLES.items():
        if key not in theory:
            continue
        ax.semilogx(t[pos], theory[key][pos], "-", color=color, lw=1.5, label=f"{label} (theory)")
        for rule, curves in sims.items():
            mean, std = curves[key]
            _points(ax, t[pos], mean[pos], std[pos], rule, color=color, label=f"{rule}")
    ax.set_xlabel("t = μ/D")
    ax.set_ylabel("angle (degrees)")
    ax.set_ylim(0, 180)
    ax.legend(fontsize=6)
    axf.loglog(t[pos], theory["f_norm"][pos], "k-", lw=1.5, label="theory")
    for rule, curves in sims.items():
        mean, std = curves["f_norm"]
        _points(axf, t[pos], mean[pos], std[pos], rule)
    axf.set_xlabel("t = μ/D")
    axf.set_ylabel("‖f‖, f = W₁F/D")
    axf.legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    return _save(fig, path)
