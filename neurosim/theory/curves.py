"""Figures of a learning curve ``ε_g(t)``: plateau height, escape time, deviation from theory.

Definitions (used for the theory and each simulation alike; times in units of ``t = μ/D``):

* the **plateau** is searched after the initial transient, on ``t ≥ t_after``: up to the first
  time the curve has fallen below half its value at ``t_after``, it is the point where the
  curve is flattest, ``|d ln ε_g / d ln t|`` smallest; its **height** is ``ε_g`` there;
* the **escape time** is the first time after the plateau at which ``ε_g`` has fallen to half
  the plateau height (interpolated linearly in ``ln t``, ``ln ε_g``); ``None`` if it never does;
* the **deviation** of a simulation from theory at ``t`` is ``|ε̄_sim − ε_th| / ε_th``, with
  ``ε̄_sim`` the mean over seeds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Plateau:
    time: float | None      # where the curve is flattest
    height: float | None    # ε_g there
    escape_time: float | None


def _log_slope(t: np.ndarray, eps: np.ndarray) -> np.ndarray:
    return np.gradient(np.log(eps), np.log(t))


def plateau(t, eps, t_after: float) -> Plateau:
    """The plateau and the escape from it (module docstring); ``t > 0`` increasing."""
    t, eps = np.asarray(t, float), np.asarray(eps, float)
    keep = (t > 0) & (eps > 0)
    t, eps = t[keep], eps[keep]
    start = int(np.searchsorted(t, t_after))
    if t.size - start < 3:
        return Plateau(None, None, None)
    below = np.nonzero(eps[start:] < 0.5 * eps[start])[0]
    stop = start + (int(below[0]) if below.size else t.size - start)
    slope = _log_slope(t, eps)
    i = start + int(np.argmin(np.abs(slope[start:max(stop, start + 1)])))
    height = float(eps[i])
    after = np.nonzero(eps[i:] <= 0.5 * height)[0]
    if not after.size:
        return Plateau(float(t[i]), height, None)
    j = i + int(after[0])
    lt, le = np.log(t[j - 1:j + 1]), np.log(eps[j - 1:j + 1])
    frac = (np.log(0.5 * height) - le[0]) / (le[1] - le[0])
    return Plateau(float(t[i]), height, float(np.exp(lt[0] + frac * (lt[1] - lt[0]))))


def relative_deviation(theory, simulation_mean) -> np.ndarray:
    """``|ε̄_sim − ε_th| / ε_th`` pointwise."""
    theory = np.asarray(theory, float)
    return np.abs(np.asarray(simulation_mean, float) - theory) / theory
