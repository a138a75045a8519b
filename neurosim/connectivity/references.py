"""Cortical connectivity measurements to set a network beside, each with its citation and status.

Values from ``shared/references/cortical-connectivity.md``. *measured*: printed in the source;
*derived*: computed here from published counts. Intervals are 95 %: Wilson intervals for
proportions of counts, a multinomial parametric bootstrap of the pair counts for the ratios,
Garwood (exact Poisson) intervals of observed triad counts, a Fisher-z interval for a
correlation; each figure's ``note`` says which, and ``interval=None`` where the source gives no
uncertainty (such a figure is shown but never flagged within/outside).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from neurosim.connectivity.triads import expected_pair_null

SONG = "Song et al. 2005, PLoS Biol 3(3):e68"
CAMPAGNOLA = "Campagnola et al. 2022, Science"
COSSELL = "Cossell et al. 2015, Nature"


@dataclass(frozen=True)
class Figure:
    """One reference figure; ``key`` names the network statistic it is compared with."""

    key: str
    value: float
    interval: tuple[float, float] | None
    citation: str
    status: str  # "measured" or "derived"
    note: str = ""


@dataclass(frozen=True)
class Reference:
    name: str
    description: str
    figures: tuple[Figure, ...]
    pairs: dict | None = None  # unconnected / unidirectional / bidirectional counts
    triad_census: dict | None = None  # networkx class names -> observed counts
    notes: tuple[str, ...] = ()


def wilson(k: int, n: int) -> tuple[float, float]:
    """95 % Wilson score interval of the proportion ``k / n``."""
    z = 1.959963984540054
    phat = k / n
    centre = (phat + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def garwood(k: int) -> tuple[float, float]:
    """Exact 95 % Poisson interval of a count ``k``."""
    lo = 0.0 if k == 0 else sps.chi2.ppf(0.025, 2 * k) / 2
    return float(lo), float(sps.chi2.ppf(0.975, 2 * k + 2) / 2)


def fisher_interval(r: float, n: int) -> tuple[float, float]:
    """95 % interval of a Pearson ``r`` from ``n`` pairs (Fisher z transform)."""
    z, half = math.atanh(r), 1.959963984540054 / math.sqrt(n - 3)
    return math.tanh(z - half), math.tanh(z + half)


def pair_ratio_intervals(unconnected: int, unidirectional: int, bidirectional: int,
                         draws: int = 20000, seed: int = 0) -> dict[str, tuple[float, float]]:
    """95 % intervals of the reciprocity ratio ``P(bi)/p²`` and the edge reciprocity
    ``2 bi / E`` by resampling the pair counts (multinomial with the observed frequencies)."""
    total = unconnected + unidirectional + bidirectional
    rng = np.random.default_rng(seed)
    c = rng.multinomial(total, np.array([unconnected, unidirectional, bidirectional]) / total, draws)
    uni, bi = c[:, 1].astype(float), c[:, 2].astype(float)
    p = (uni + 2 * bi) / (2 * total)
    ratio = (bi / total) / p ** 2
    recip = 2 * bi / (uni + 2 * bi)
    return {k: tuple(float(x) for x in np.percentile(v, [2.5, 97.5]))
            for k, v in {"reciprocity_ratio": ratio, "edge_reciprocity": recip}.items()}


def _song2005() -> Reference:
    un, uni, bi = 3312, 495, 218
    pairs = un + uni + bi  # 4025
    conn = uni + 2 * bi  # 931
    p = conn / (2 * pairs)
    ratios = pair_ratio_intervals(un, uni, bi)
    census = {"003": 1375, "012": 579, "102": 274, "021D": 33, "021U": 25, "021C": 41,
              "111D": 41, "111U": 24, "030T": 9, "030C": 4, "201": 17, "120D": 6, "120U": 5,
              "120C": 4, "210": 6, "300": 3}
    triplets = sum(census.values())  # 2446
    # pair-null class probabilities (one triad, n = 3) times Song's 2,446 triplets
    expected = {k: v * triplets for k, v in expected_pair_null(3, un, uni, bi).items()}
    figs = [
        Figure("connection_probability", p, wilson(conn, 2 * pairs), SONG, "measured",
               "931 connections of 8,050 tested (4,025 pairs); Wilson interval"),
        Figure("bidirectional_pair_probability", bi / pairs, wilson(bi, pairs), SONG, "derived",
               "218 / 4,025 pairs; Wilson interval"),
        Figure("bidirectional_fraction_of_connected", bi / (uni + bi), wilson(bi, uni + bi), SONG,
               "derived", "218 / 713 connected pairs (the 69 % / 31 % split); Wilson interval"),
        Figure("reciprocity_ratio", (bi / pairs) / p ** 2, ratios["reciprocity_ratio"], SONG,
               "derived", "P(bidirectional) / p², the paper's '4x'; multinomial bootstrap"),
        Figure("edge_reciprocity", 2 * bi / conn, ratios["edge_reciprocity"], SONG, "derived",
               "436 / 931; multinomial bootstrap"),
        Figure("reciprocal_weight_correlation", 0.36, fisher_interval(0.36, bi), SONG, "measured",
               "Pearson R of log EPSP amplitudes in bidirectional pairs (Fig 6B/C, p < 0.0001; "
               "shuffled control 0.068); interval: Fisher z assuming all 218 pairs were measured"),
        Figure("lognormal_sigma", 0.9355, None, SONG, "measured",
               "sigma of ln(EPSP / mV), all connections (Appendix S1); mu = -0.702, mean 0.77 mV, "
               "median 0.50 mV"),
        Figure("lognormal_sigma_bidirectional", 0.976, None, SONG, "measured",
               "connections in bidirectional pairs, mu = -0.60 (Fig 6A)"),
        Figure("lognormal_sigma_unidirectional", 0.834, None, SONG, "measured",
               "connections in unidirectional pairs, mu = -0.81 (Fig 6A)"),
        Figure("median_weight_ratio_bi_uni", math.exp(-0.60 - -0.81), None, SONG, "derived",
               "exp(mu_bidirectional - mu_unidirectional) of the Fig 6A fits"),
    ]
    for k in ("300", "120D", "120U", "030C", "030T", "210"):
        lo, hi = garwood(census[k])
        figs.append(Figure(f"triad_ratio_pair_null:{k}", census[k] / expected[k],
                           (lo / expected[k], hi / expected[k]), SONG, "derived",
                           f"observed {census[k]} of {triplets} triplets / pair-null expectation "
                           f"{expected[k]:.2f} (Fig 4B); Garwood interval of the count"))
    return Reference(
        "song2005", "rat visual cortex, layer-5 pyramidal neurons, paired recordings",
        tuple(figs), {"unconnected": un, "unidirectional": uni, "bidirectional": bi}, census,
        ("Triad counts in Song's class order; the order within 021D/021U, 111D/111U and "
         "120D/120U is not resolved in the source (taken as printed).",))


def _campagnola2022() -> Reference:
    return Reference("campagnola2022", "mouse and human cortex, Allen synaptic physiology", (
        Figure("reciprocity_ratio", 4.0, (3.0, 5.0), CAMPAGNOLA, "measured",
               "reciprocal connections 3-5x the p² expectation at cell-class level (range as read "
               "from the paper)"),
        Figure("connection_probability", 0.22, None, CAMPAGNOLA, "measured",
               "mouse L4 E->E; the reference notes give it as 44/452, which is 0.097: "
               "inconsistent, so never flagged"),
    ))


def _cossell2015() -> Reference:
    return Reference("cossell2015", "mouse V1 layer 2/3 pyramidal neurons", (
        Figure("bidirectional_fraction_of_connected", 11 / 61, wilson(11, 61), COSSELL, "derived",
               "11 bidirectional of 61 connected pairs (Extended Data Fig 5); Wilson interval"),
        Figure("median_weight_ratio_bi_uni", 0.44 / 0.16, None, COSSELL, "derived",
               "median EPSP 0.44 mV (bidirectional, n = 22) / 0.16 mV (unidirectional, n = 50)"),
    ))


REFERENCES: dict[str, Reference] = {r.name: r for r in (_song2005(), _campagnola2022(), _cossell2015())}


def get_reference(name: str) -> Reference:
    if name not in REFERENCES:
        raise ValueError(f"unknown reference {name!r}; choose one of: {', '.join(REFERENCES)}")
    return REFERENCES[name]
