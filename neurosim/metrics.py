"""Analysis metrics: vector angles, learning-curve slowness, weight distributions.

Pure numpy/scipy. Accuracies are in whatever unit the caller uses (the project
stores percent); epochs are counts of completed training epochs.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special, stats


def mean_std(values) -> tuple[float, float, int]:
    """Mean, sample std (ddof=1) and count of the finite entries of ``values``.

    The std is 0.0 for a single value; ``(nan, nan, 0)`` when none is finite.
    """
    x = np.asarray(values, dtype=float).ravel()
    x = x[np.isfinite(x)]
    if x.size == 0:
        return float("nan"), float("nan"), 0
    std = float(x.std(ddof=1)) if x.size > 1 else 0.0
    return float(x.mean()), std, int(x.size)


def angle_deg(a, b) -> float:
    """Angle between two arrays seen as flat vectors, in degrees.

    ``theta = arccos(<a, b> / (|a| |b|)) * 180/pi``, with the cosine clipped to
    [-1, 1]. Scale invariant; 0 = parallel, 90 = orthogonal, 180 = antiparallel.

    Raises ValueError if the shapes differ or either array has zero norm.
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: a has shape {a.shape}, b has shape {b.shape}")
    a, b = a.ravel(), b.ravel()
    norm_a, norm_b = np.linalg.norm(a), np.linalg.norm(b)
    for name, norm in (("a", norm_a), ("b", norm_b)):
        if norm == 0:
            raise ValueError(f"angle undefined: {name} has zero norm")
    cos = np.dot(a, b) / (norm_a * norm_b)
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


def update_angle_deg(update, reference) -> float:
    """Angle (degrees) between a rule's weight update and a reference update.

    The DRTP paper's measure: the angle between a rule's hidden-layer update and
    the BP update computed on the same batch; same equation as ``angle_deg``.
    Undefined when either update is zero: returns nan instead of raising (e.g.
    a batch that produced no update). Shape mismatch still raises ValueError.
    """
    update = np.asarray(update, dtype=float)
    reference = np.asarray(reference, dtype=float)
    if update.shape == reference.shape and (not update.any() or not reference.any()):
        return float("nan")
    return angle_deg(update, reference)


@dataclass(frozen=True)
class SlownessFit:
    """Fit of acc(t) = max_accuracy * t / (slowness + t).

    max_accuracy: asymptotic accuracy a_max (unit of the input accuracies).
    slowness: s, in epochs; acc(s) = a_max / 2, smaller = faster learning.
    ``*_std``: one-sigma errors from the fit covariance (inf with only 2 points).
    n_points: points used, including the prepended (0, chance) point.
    """

    max_accuracy: float
    slowness: float
    slowness_std: float
    max_accuracy_std: float
    n_points: int


def _plateau(t, a_max, s):
    return a_max * t / (s + t)


def slowness_fit(epochs, accuracy, chance=None, max_epoch=None) -> SlownessFit:
    """Fit the PEPITA plateau curve to a learning curve.

    acc(t) = a_max * t / (s + t)   (Dellaferrera & Kreiman 2022, eq. 7; App. C eq. 8)

    t is the number of completed epochs, acc the test accuracy after t epochs;
    a_max (accuracy units) is the plateau and s (epochs) the slowness, the time
    to reach a_max / 2. As in the paper, ``chance`` (e.g. 10 for MNIST in %)
    prepends the point (0, chance), and ``max_epoch`` keeps only t <= max_epoch
    (the paper fits the first 60 epochs, before the learning-rate decay). Fitted
    by least squares (scipy.optimize.curve_fit) with a_max, s >= 0.

    Raises ValueError for mismatched lengths, non-finite values, negative epochs
    or fewer than 2 points.
    """
    t = np.asarray(epochs, dtype=float).ravel()
    acc = np.asarray(accuracy, dtype=float).ravel()
    if t.shape != acc.shape:
        raise ValueError(f"epochs ({t.size}) and accuracy ({acc.size}) differ in length")
    if max_epoch is not None:
        keep = t <= max_epoch
        t, acc = t[keep], acc[keep]
    if chance is not None:
        t, acc = np.r_[0.0, t], np.r_[float(chance), acc]
    if not (np.isfinite(t).all() and np.isfinite(acc).all()):
        raise ValueError("epochs and accuracy must be finite (found nan/inf)")
    if (t < 0).any():
        raise ValueError("epochs must be >= 0")
    if t.size < 2:
        raise ValueError(f"need at least 2 points to fit (a_max, s), got {t.size}")
    p0 = (max(acc.max(), 1e-12), max(float(np.median(t)), 1e-3))
    with warnings.catch_warnings():  # 2 points: covariance cannot be estimated -> inf
        warnings.simplefilter("ignore", optimize.OptimizeWarning)
        (a_max, s), cov = optimize.curve_fit(_plateau, t, acc, p0=p0, bounds=([0.0, 0.0], [np.inf, np.inf]))
    a_std, s_std = np.sqrt(np.diag(cov))
    return SlownessFit(float(a_max), float(s), float(s_std), float(a_std), int(t.size))


@dataclass(frozen=True)
class DistributionFits:
    """Normal vs Student-t maximum-likelihood fits of a weight array.

    loglik_*: summed log-likelihood (nats) over the n_samples values fitted.
    aic_*: 2k - 2 loglik with k = 2 (normal) and 3 (t). preferred: 'normal' or
    't', whichever has the lower AIC.
    """

    normal_mean: float
    normal_std: float
    t_df: float
    t_loc: float
    t_scale: float
    loglik_normal: float
    loglik_t: float
    aic_normal: float
    aic_t: float
    preferred: str
    n_samples: int


_T_DF_BOUNDS = (0.1, 1e4)


def _t_nll(theta, x):
    """Negative log-likelihood of Student-t and its gradient in (log df, loc, log scale)."""
    log_df, loc, log_scale = theta
    df, scale = np.exp(log_df), np.exp(log_scale)
    z2 = ((x - loc) / scale) ** 2
    q = np.log1p(z2 / df)
    w = (df + 1) / (df + z2)
    n = x.size
    const = special.gammaln((df + 1) / 2) - special.gammaln(df / 2) - 0.5 * np.log(df * np.pi)
    loglik = n * (const - log_scale) - 0.5 * (df + 1) * q.sum()
    wz2 = (w * z2).sum()
    d_df = 0.5 * (n * (special.digamma((df + 1) / 2) - special.digamma(df / 2) - 1 / df) - q.sum() + wz2 / df)
    d_loc = (w * (x - loc)).sum() / scale**2
    d_log_scale = wz2 - n
    return -loglik, -np.array([d_df * df, d_loc, d_log_scale])


def _fit_t(x: np.ndarray) -> tuple[float, float, float]:
    """Student-t MLE (df, loc, scale): the likelihood of scipy.stats.t.fit, optimised
    with L-BFGS-B and analytic gradients on robustly standardised data (~10x faster)."""
    center = float(np.median(x))
    spread = float(stats.median_abs_deviation(x, scale="normal")) or float(x.std())
    z = (x - center) / spread
    bounds = [tuple(np.log(_T_DF_BOUNDS)), (None, None), (None, None)]
    res = optimize.minimize(_t_nll, np.array([np.log(5.0), 0.0, 0.0]), args=(z,), jac=True,
                            method="L-BFGS-B", bounds=bounds)
    log_df, loc, log_scale = res.x
    return float(np.exp(log_df)), center + spread * float(loc), spread * float(np.exp(log_scale))


def weight_distribution_fits(weights, max_samples: int = 200_000, seed: int = 0) -> DistributionFits:
    """Fit Normal and Student-t distributions to weights and compare them by AIC.

    PEPITA Appendix H. Normal: scipy.stats.norm.fit (mean, std). Student-t: the
    maximum-likelihood (df, loc, scale) of scipy.stats.t.fit, computed with
    analytic gradients for speed; df is bounded to [0.1, 1e4] (df -> inf is the
    Normal). AIC = 2k - 2 log L, k = 2 (normal), 3 (t); lower AIC is preferred.

    Arrays larger than ``max_samples`` are subsampled without replacement with a
    seeded generator (deterministic for a given ``seed``); fits, log-likelihoods
    and AICs all refer to that subsample (``n_samples``). 1M weights fit in well
    under 2 s.

    Raises ValueError for non-finite values, fewer than 3 values or constant weights.
    """
    x = np.asarray(weights, dtype=float).ravel()
    if not np.isfinite(x).all():
        raise ValueError("weights contain nan/inf")
    if x.size < 3:
        raise ValueError(f"need at least 3 weights, got {x.size}")
    if x.size > max_samples:
        x = np.random.default_rng(seed).choice(x, size=max_samples, replace=False)
    if np.ptp(x) == 0:
        raise ValueError("weights are constant; no distribution to fit")
    mean, std = stats.norm.fit(x)
    df, loc, scale = _fit_t(x)
    ll_norm = float(stats.norm.logpdf(x, mean, std).sum())
    ll_t = float(stats.t.logpdf(x, df, loc, scale).sum())
    aic_norm, aic_t = 2 * 2 - 2 * ll_norm, 2 * 3 - 2 * ll_t
    return DistributionFits(
        normal_mean=float(mean), normal_std=float(std), t_df=df, t_loc=loc, t_scale=scale,
        loglik_normal=ll_norm, loglik_t=ll_t, aic_normal=aic_norm, aic_t=aic_t,
        preferred="t" if aic_t < aic_norm else "normal", n_samples=int(x.size),
    )
