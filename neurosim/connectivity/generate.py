"""Random graphs with prescribed pair statistics, to check that the analyzer recovers them.

:func:`pair_model_graph`: every unordered pair of distinct neurons is independently
bidirectional (probability ``p_bi``), unidirectional (``p_uni``, direction by a fair coin) or
unconnected. Weights are lognormal: ``ln w = mu + sigma z``; in a bidirectional pair the two
``z`` are standard normal with correlation ``r_log`` (so the Pearson correlation of the log
weights is ``r_log``). Sampling draws only the connected pairs, ``O(E log E)``, so sparse graphs
of millions of connections are cheap.
"""

from __future__ import annotations

import math

import numpy as np

from neurosim.connectivity.graph import Graph, build_graph


def _distinct_pairs(n: int, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``k`` distinct unordered pairs ``i < j`` of ``range(n)``, uniformly at random."""
    keys = np.zeros(0, dtype=np.int64)
    while len(keys) < k:
        need = int((k - len(keys)) * 1.1) + 16
        i, j = rng.integers(0, n, need), rng.integers(0, n, need)
        ok = i != j
        new = np.minimum(i, j)[ok] * n + np.maximum(i, j)[ok]
        keys = np.unique(np.concatenate([keys, new]))
    keys = rng.permutation(keys)[:k]
    return keys // n, keys % n


def pair_model_graph(n: int, p_uni: float, p_bi: float, mu_uni: float = 0.0, sigma_uni: float = 1.0,
                     mu_bi: float | None = None, sigma_bi: float | None = None,
                     r_log: float = 0.0, seed: int = 0) -> Graph:
    """A graph of the pair model (module docstring); ``mu_bi``/``sigma_bi`` default to the
    unidirectional values."""
    if not (0 <= p_uni and 0 <= p_bi and p_uni + p_bi <= 1) or not -1 <= r_log <= 1:
        raise ValueError(f"need p_uni, p_bi >= 0 with p_uni + p_bi <= 1 and |r_log| <= 1, got "
                         f"{p_uni}, {p_bi}, {r_log}")
    mu_bi = mu_uni if mu_bi is None else mu_bi
    sigma_bi = sigma_uni if sigma_bi is None else sigma_bi
    rng = np.random.default_rng(seed)
    total = math.comb(n, 2)
    k_bi = int(rng.binomial(total, p_bi))
    k_uni = int(rng.binomial(total - k_bi, p_uni / (1 - p_bi))) if p_bi < 1 else 0
    a, b = _distinct_pairs(n, k_bi + k_uni, rng)
    bi_a, bi_b, uni_a, uni_b = a[:k_bi], b[:k_bi], a[k_bi:], b[k_bi:]
    flip = rng.random(k_uni) < 0.5
    uni_pre, uni_post = np.where(flip, uni_b, uni_a), np.where(flip, uni_a, uni_b)
    z1 = rng.standard_normal(k_bi)
    z2 = r_log * z1 + math.sqrt(1 - r_log ** 2) * rng.standard_normal(k_bi)
    pre = np.concatenate([uni_pre, bi_a, bi_b])
    post = np.concatenate([uni_post, bi_b, bi_a])
    w = np.exp(np.concatenate([mu_uni + sigma_uni * rng.standard_normal(k_uni),
                               mu_bi + sigma_bi * z1, mu_bi + sigma_bi * z2]))
    return build_graph(pre, post, w, n=n, source=f"pair model (n = {n}, p_uni = {p_uni:.4g}, "
                       f"p_bi = {p_bi:.4g}, r_log = {r_log}, seed {seed})")


def song2005_graph(n: int, seed: int = 0) -> Graph:
    """The pair model at Song et al. (2005)'s published statistics: pair frequencies 495 and
    218 of 4,025 (Fig 4A), lognormal EPSPs in mV with mu = -0.81, sigma = 0.834 (unidirectional)
    and mu = -0.60, sigma = 0.976 (bidirectional pairs; Fig 6A), r = 0.36 of the log amplitudes
    (Fig 6B)."""
    return pair_model_graph(n, 495 / 4025, 218 / 4025, -0.81, 0.834, -0.60, 0.976, 0.36, seed)
