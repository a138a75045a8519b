"""Pair, weight and alignment statistics of a :class:`~neurosim.connectivity.graph.Graph`.

Definitions (N neurons, E connections, a *pair* is an unordered pair of distinct neurons):

* connection probability ``p = E / (N (N - 1))`` (ordered pairs; self-connections not possible);
* a pair is *unconnected*, *unidirectional* (one direction) or *bidirectional* (both);
* bidirectional fraction of connected pairs ``n_bi / (n_uni + n_bi)``; chance ``p / (2 - p)``;
* reciprocity ratio ``P(bidirectional pair) / p²`` with ``P = n_bi / (N (N - 1) / 2)``: Song et
  al. (2005)'s "4x"; chance 1;
* edge reciprocity ``2 n_bi / E = P(j -> i | i -> j)`` (``networkx.reciprocity``); chance ``p``;
* reciprocal weight correlation: Pearson (centred) correlation over bidirectional pairs
  ``{i, j}``, ``i < j`` in the global index, of ``x = w(i -> j)`` and ``y = w(j -> i)``, of
  ``ln|w|`` (as Song's Fig. 6B) and of ``|w|`` (linear); absent connections are not included;
  95 % percentile bootstrap interval over pairs;
* alignment angle of two weight arrays ``A``, ``B``: ``arccos(<A, B> / (|A| |B|))``, uncentred
  (cosine), linear signed weights, absent connections counted as zeros; for the whole graph
  ``A = W`` and ``B = W^T``: 0° symmetric, 90° unrelated (or no reciprocal connection), 180°
  antisymmetric;
* lognormal fit (``scipy.stats.lognorm``, location 0) of the positive weights: ``mu``, ``sigma``
  of ``ln w`` (natural log, maximum likelihood).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as sps

from neurosim.connectivity.graph import Graph


def reciprocal_index(graph: Graph):
    """``(pre, post, w, has_reverse, reverse_position)`` over the graph's connections:
    ``has_reverse[k]`` is whether connection k's reverse exists, at ``reverse_position[k]``."""
    pre, post, w = graph.edges()
    key = pre * graph.n + post  # sorted, as edges() sorts by (pre, post)
    rev = post * graph.n + pre
    pos = np.minimum(np.searchsorted(key, rev), max(len(key) - 1, 0))
    has = key[pos] == rev if len(key) else np.zeros(0, bool)
    return pre, post, w, has, pos


def _ratio(num: float, den: float) -> float | None:
    return float(num / den) if den > 0 else None


def pair_statistics(graph: Graph) -> dict:
    """Counts of pair types, p, the bidirectional share, reciprocity ratio, edge reciprocity and
    their chance (Erdős–Rényi) values."""
    n, e = graph.n, graph.n_edges
    has = reciprocal_index(graph)[3]
    bi = int(has.sum()) // 2
    uni = e - 2 * bi
    total = n * (n - 1) // 2
    p = _ratio(e, n * (n - 1))
    p_bi = _ratio(bi, total)
    return {
        "n_neurons": n,
        "n_connections": e,
        "connection_probability": p,
        "pairs": {"unconnected": total - uni - bi, "unidirectional": uni, "bidirectional": bi,
                  "total": total},
        "bidirectional_fraction_of_connected": _ratio(bi, uni + bi),
        "bidirectional_pair_probability": p_bi,
        "reciprocity_ratio": _ratio(p_bi, p * p) if p else None,
        "edge_reciprocity": _ratio(2 * bi, e),
        "chance": None if p is None else {
            "bidirectional_pair_probability": p * p,
            "bidirectional_fraction_of_connected": p / (2 - p),
            "edge_reciprocity": p,
            "reciprocity_ratio": 1.0,
        },
    }


def reciprocal_weights(graph: Graph) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(i, j, w(i -> j), w(j -> i))`` for every bidirectional pair, ``i < j``."""
    pre, post, w, has, pos = reciprocal_index(graph)
    first = has & (pre < post)
    return pre[first], post[first], w[first], w[pos[first]]


def pearson(x: np.ndarray, y: np.ndarray) -> float | None:
    """Pearson correlation; None with fewer than 3 pairs or a constant variable."""
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def bootstrap_pearson(samples: list[tuple[np.ndarray, np.ndarray]], n_boot: int = 1000,
                      seed: int = 0, chunk: int = 10_000_000) -> list[list[float] | None]:
    """95 % percentile bootstrap intervals of the Pearson correlation of each ``(x, y)`` in
    ``samples`` (all of one length; the same resampled pairs serve every sample). Resamples are
    summed in float32 after centring on the full sample's means (sums accumulate in float64), in
    chunks of about ``chunk`` draws."""
    n = len(samples[0][0]) if samples else 0
    if n_boot <= 0 or n < 3:
        return [None] * len(samples)
    rng = np.random.default_rng(seed)
    centred = [((x - x.mean()).astype(np.float32), (y - y.mean()).astype(np.float32))
               for x, y in samples]
    per = max(1, chunk // n)
    rs = [[] for _ in samples]
    for start in range(0, n_boot, per):
        idx = rng.integers(0, n, size=(min(per, n_boot - start), n),
                           dtype=np.int32 if n < 2 ** 31 else np.int64)
        for out, (xc, yc) in zip(rs, centred):
            xs, ys = xc[idx], yc[idx]
            sx, sy = xs.sum(1, dtype=np.float64), ys.sum(1, dtype=np.float64)
            sxx, syy, sxy = (np.einsum("ij,ij->i", u, v, dtype=np.float64)
                             for u, v in ((xs, xs), (ys, ys), (xs, ys)))
            with np.errstate(invalid="ignore", divide="ignore"):
                out.append((sxy - sx * sy / n) / np.sqrt((sxx - sx * sx / n) * (syy - sy * sy / n)))
    intervals = []
    for (x, y), out in zip(samples, rs):
        r = np.concatenate(out)
        r = r[np.isfinite(r)]
        ok = pearson(x, y) is not None and len(r)
        intervals.append([float(v) for v in np.percentile(r, [2.5, 97.5])] if ok else None)
    return intervals


def weight_correlations(x: np.ndarray, y: np.ndarray, n_boot: int = 1000, seed: int = 0) -> dict:
    """Pearson of ``ln|w|`` and of ``|w|`` over reciprocal pairs, with bootstrap intervals."""
    ax, ay = np.abs(x), np.abs(y)
    samples = {"log": (np.log(ax), np.log(ay)), "linear": (ax, ay)}
    cis = bootstrap_pearson(list(samples.values()), n_boot, seed)
    out = {"n_pairs": int(len(x))}
    for (name, (u, v)), ci in zip(samples.items(), cis):
        out[name] = {"r": pearson(u, v), "ci95": ci}
    return out


def lognormal_fit(w: np.ndarray) -> dict | None:
    """Maximum-likelihood lognormal (location 0) of positive weights ``w``: ``mu``, ``sigma`` of
    ``ln w``, the fitted mean and median, the sample mean and median, and the KS statistic."""
    w = np.asarray(w, dtype=np.float64)
    if len(w) < 2 or np.ptp(w) == 0:
        return None
    if np.any(w <= 0):
        raise ValueError("lognormal_fit needs positive weights; split signed weights by sign first")
    sigma, _, scale = sps.lognorm.fit(w, floc=0)
    mu = math.log(scale)
    return {"n": int(len(w)), "mu": mu, "sigma": float(sigma),
            "fit_mean": math.exp(mu + sigma ** 2 / 2), "fit_median": math.exp(mu),
            "sample_mean": float(w.mean()), "sample_median": float(np.median(w)),
            "ks_statistic": float(sps.kstest(w, "lognorm", args=(sigma, 0, scale)).statistic)}


def weight_statistics(graph: Graph) -> dict:
    """Sign split and lognormal fits of the weight magnitudes: all connections, connections in
    bidirectional pairs and in unidirectional pairs (as Song's Fig. 6A), each sign separately."""
    pre, post, w, has, _ = reciprocal_index(graph)
    out = {"sign_split": {"positive": int((w > 0).sum()), "negative": int((w < 0).sum())}}
    for sign, name in ((1, "excitatory"), (-1, "inhibitory")):
        keep = np.sign(w) == sign
        if keep.any():
            mag = np.abs(w)
            out[f"lognormal_{name}"] = {
                "all": lognormal_fit(mag[keep]),
                "in_bidirectional_pairs": lognormal_fit(mag[keep & has]),
                "in_unidirectional_pairs": lognormal_fit(mag[keep & ~has]),
            }
    return out


def alignment_angle_deg(a_dot_b: float, a_norm2: float, b_norm2: float) -> float | None:
    """``arccos(<A, B> / (|A| |B|))`` in degrees from the inner product and squared norms."""
    if a_norm2 <= 0 or b_norm2 <= 0:
        return None
    c = max(-1.0, min(1.0, a_dot_b / math.sqrt(a_norm2 * b_norm2)))
    return math.degrees(math.acos(c))


def graph_alignment_deg(graph: Graph) -> float | None:
    """Angle between ``W`` and ``W^T`` (see the module docstring)."""
    _, _, w, has, pos = reciprocal_index(graph)
    sq = float((w * w).sum())
    return alignment_angle_deg(float((w[has] * w[pos[has]]).sum()), sq, sq)


def population_breakdown(graph: Graph) -> list[dict]:
    """The pair statistics per unordered pair of populations ``{a, b}`` (a may equal b).

    Between populations: ``p(a -> b) = E(a -> b) / (n_a n_b)``, reciprocity ratio
    ``P(bidirectional) / (p(a -> b) p(b -> a))``; within one population ``p = E / (n (n - 1))``
    and the ratio ``P / p²``. The reciprocal weight correlation (Pearson of ``ln|w|``) has
    ``x = w(a -> b)``, ``y = w(b -> a)`` (within a population, ``i < j``). The alignment angle is
    that between the block ``W[a -> b]`` and ``W[b -> a]^T``. Only population pairs with at least
    one connection are listed.
    """
    pre, post, w, has, pos = reciprocal_index(graph)
    P = len(graph.populations)
    la, lb = graph.labels[pre], graph.labels[post]
    code = la * P + lb
    n_dir = np.bincount(code, minlength=P * P).reshape(P, P)
    sq = np.bincount(code, weights=w * w, minlength=P * P).reshape(P, P)
    dot = np.bincount(code[has], weights=w[has] * w[pos[has]], minlength=P * P).reshape(P, P)
    first = has & (pre < post)
    lo, hi = np.minimum(la[first], lb[first]), np.maximum(la[first], lb[first])
    n_bi = np.bincount(lo * P + hi, minlength=P * P).reshape(P, P)
    # orient each reciprocal pair as (a -> b, b -> a) with a = the smaller population label
    fwd = np.where(la[first] <= lb[first], w[first], w[pos[first]])
    bwd = np.where(la[first] <= lb[first], w[pos[first]], w[first])
    pair_code = lo * P + hi
    sizes = graph.population_sizes()
    rows = []
    for a in range(P):
        for b in range(a, P):
            e_ab, e_ba = int(n_dir[a, b]), int(n_dir[b, a])
            if e_ab + e_ba == 0:
                continue
            bi = int(n_bi[a, b])
            if a == b:
                n_pairs = int(sizes[a]) * (int(sizes[a]) - 1) // 2
                p_ab = p_ba = _ratio(e_ab, 2 * n_pairs)
                uni = e_ab - 2 * bi
            else:
                n_pairs = int(sizes[a]) * int(sizes[b])
                p_ab, p_ba = _ratio(e_ab, n_pairs), _ratio(e_ba, n_pairs)
                uni = e_ab + e_ba - 2 * bi
            sel = pair_code == a * P + b
            p_bi = _ratio(bi, n_pairs)
            rows.append({
                "populations": [graph.populations[a], graph.populations[b]],
                "possible_pairs": n_pairs,
                "connections_ab": e_ab, "connections_ba": e_ba,
                "p_ab": p_ab, "p_ba": p_ba,
                "unidirectional": uni, "bidirectional": bi,
                "bidirectional_fraction_of_connected": _ratio(bi, uni + bi),
                "reciprocity_ratio": _ratio(p_bi, p_ab * p_ba) if p_ab and p_ba else None,
                "reciprocal_weight_correlation_log": pearson(np.log(np.abs(fwd[sel])),
                                                             np.log(np.abs(bwd[sel]))),
                "alignment_angle_deg": alignment_angle_deg(float(dot[a, b]), float(sq[a, b]),
                                                           float(sq[b, a])),
            })
    return rows
