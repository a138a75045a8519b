"""Seeded weight and feedback matrices shared by every backend.

A rate model and a Brian2 circuit built with the same ``seed`` receive the very same arrays.
Every matrix is drawn from its own stream ``default_rng([seed, crc32(name)])``, so adding a
matrix never changes the others.

Shapes follow the PFA paper's notation (a feedback matrix maps the error of the upper layer onto
the lower layer):

* forward ``W_l``: ``(N_l, N_{l-1})``; ``x_l = phi(W_l x_{l-1} + b_l)``;
* FA / sign symmetry / KP / WM ``B_l``: ``(N_{l-1}, N_l)``, the shape of ``W_l^T``;
* DFA / sDFA / DRTP ``B_l``: ``(N_l, N_L)``, projecting the output error (or target) onto layer l;
* PEPITA ``F``: ``(N_0, N_L)``, projecting the output error onto the input: ``x + F e``;
* PFA ``B_l``: ``(Nbar_l, N_{l+1})`` fixed, ``R_l``: ``(N_l, Nbar_l)`` plastic, ``Nbar_l = N_{l+1}/lam``.
"""

from __future__ import annotations

import math
import zlib

import numpy as np

INITS = ("he_uniform", "he_normal", "glorot_uniform", "glorot_normal", "zeros")


def stream(seed: int, name: str) -> np.random.Generator:
    """The random stream of matrix ``name`` for ``seed``."""
    return np.random.default_rng([int(seed), zlib.crc32(name.encode())])


def init_matrix(shape: tuple[int, int], scheme: str, rng: np.random.Generator,
                fan_in: int | None = None, fan_out: int | None = None,
                gain: float = 1.0) -> np.ndarray:
    """A float32 matrix drawn by ``scheme``.

    He (Kaiming) uniform: U(-a, a), a = gain·sqrt(6/fan_in); He normal: N(0, gain²·2/fan_in);
    Glorot uniform: U(-a, a), a = gain·sqrt(6/(fan_in+fan_out)); Glorot normal:
    N(0, gain²·2/(fan_in+fan_out)). ``fan_in``/``fan_out`` default to ``shape[1]``/``shape[0]``
    (the forward convention ``W: (out, in)``).
    """
    fan_in = shape[1] if fan_in is None else fan_in
    fan_out = shape[0] if fan_out is None else fan_out
    if scheme == "he_uniform":
        a = gain * math.sqrt(6.0 / fan_in)
        m = rng.uniform(-a, a, size=shape)
    elif scheme == "he_normal":
        m = rng.normal(0.0, gain * math.sqrt(2.0 / fan_in), size=shape)
    elif scheme == "glorot_uniform":
        a = gain * math.sqrt(6.0 / (fan_in + fan_out))
        m = rng.uniform(-a, a, size=shape)
    elif scheme == "glorot_normal":
        m = rng.normal(0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), size=shape)
    elif scheme == "zeros":
        m = np.zeros(shape)
    else:
        raise ValueError(f"unknown initialization {scheme!r}; choose one of: {', '.join(INITS)}")
    return m.astype(np.float32)


def forward_weights(sizes: list[int], scheme: str, seed: int) -> list[np.ndarray]:
    """Forward weights ``W_l`` of shape ``(sizes[l], sizes[l-1])`` for l = 1..L."""
    return [init_matrix((sizes[l], sizes[l - 1]), scheme, stream(seed, f"W{l}"))
            for l in range(1, len(sizes))]


def pepita_F(input_dim: int, n_out: int, seed: int, scale: float = 0.05,
             distribution: str = "uniform") -> np.ndarray:
    """PEPITA's input projection ``F`` of shape ``(input_dim, n_out)``.

    Uniform (Dellaferrera & Kreiman 2022, Table 2; the official code): entries
    U(-scale·sqrt(6/D), scale·sqrt(6/D)), an interval of width scale·2·sqrt(6/D), D = input_dim
    (the fan-in). Normal (Srinivasan et al. 2023, Table 4): N(0, (scale·sqrt(2/D))²).
    """
    rng = stream(seed, "F")
    if distribution == "uniform":
        a = scale * math.sqrt(6.0 / input_dim)
        m = rng.uniform(-a, a, size=(input_dim, n_out))
    elif distribution == "normal":
        m = rng.normal(0.0, scale * math.sqrt(2.0 / input_dim), size=(input_dim, n_out))
    else:
        raise ValueError(f"unknown F distribution {distribution!r}; choose 'uniform' or 'normal'")
    return m.astype(np.float32)


def factorized_F(sizes: list[int], seed: int, target_std: float) -> list[np.ndarray]:
    """Factors ``F_1 ... F_L`` of PEPITA's ``F = F_1 F_2 ... F_L`` (Srinivasan et al. 2023, Sec. 6.1).

    ``F_l`` has the shape of ``W_l^T``, ``(sizes[l-1], sizes[l])``, normal entries, all scaled by
    the same factor so that the product has standard deviation ``target_std`` (σ_F^(0)).
    """
    factors = [stream(seed, f"F{l}").normal(0.0, 1.0 / math.sqrt(sizes[l - 1]),
                                            size=(sizes[l - 1], sizes[l]))
               for l in range(1, len(sizes))]
    product = factors[0]
    for f in factors[1:]:
        product = product @ f
    c = (target_std / product.std()) ** (1.0 / len(factors))
    return [(c * f).astype(np.float32) for f in factors]


def layer_feedback(sizes: list[int], scheme: str, seed: int) -> list[np.ndarray]:
    """FA feedback ``B_l`` of shape ``(sizes[l-1], sizes[l])`` (that of ``W_l^T``), l = 2..L.

    Drawn like the forward weight it replaces (fan-in ``sizes[l-1]``), so ``B_l^T`` has the
    distribution of ``W_l``. Layer 1 needs no feedback (nothing below it learns from it).
    """
    return [init_matrix((sizes[l - 1], sizes[l]), scheme, stream(seed, f"B{l}"),
                        fan_in=sizes[l - 1], fan_out=sizes[l])
            for l in range(2, len(sizes))]


def direct_feedback(sizes: list[int], scheme: str, seed: int) -> list[np.ndarray]:
    """DFA / sDFA / DRTP feedback ``B_l`` of shape ``(sizes[l], sizes[-1])`` for hidden l = 1..L-1.

    Drawn with fan-in ``N_L`` (the projected vector's size), as in the DRTP paper (He uniform).
    """
    n_out = sizes[-1]
    return [init_matrix((sizes[l], n_out), scheme, stream(seed, f"D{l}"),
                        fan_in=n_out, fan_out=sizes[l])
            for l in range(1, len(sizes) - 1)]


def pfa_feedback(sizes: list[int], seed: int, expansion: float = 10.0,
                 orthogonal: bool = False) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """PFA's fixed ``B_l`` and initial plastic ``R_l`` for l = 1..L-1 (Li Ji-An & Benna, eqs. 4-6).

    ``Nbar_l = round(expansion · N_{l+1})`` (expansion ratio 1/lam). ``B_l``: ``(Nbar_l, N_{l+1})``,
    Glorot normal with gain sqrt((1+lam)/2), i.e. variance 1/Nbar_l so that ``B^T B ≈ I``
    (PFA), or semi-orthogonal with ``B^T B = I`` exactly (PFA-o, needs expansion ≥ 1).
    ``R_l``: ``(N_l, Nbar_l)``, Glorot normal with unit gain (paper, Appendix 1.1).
    """
    if expansion <= 0:
        raise ValueError(f"PFA expansion ratio must be positive, got {expansion}")
    lam = 1.0 / expansion
    Bs, Rs = [], []
    for l in range(1, len(sizes) - 1):
        n_up, n_here = sizes[l + 1], sizes[l]
        n_bar = max(1, int(round(expansion * n_up)))
        rng = stream(seed, f"PFA_B{l}")
        if orthogonal:
            if n_bar < n_up:
                raise ValueError(f"PFA-o needs expansion >= 1 (Nbar={n_bar} < N={n_up})")
            q, r = np.linalg.qr(rng.normal(size=(n_bar, n_up)))
            B = q * np.sign(np.diag(r))
        else:
            B = init_matrix((n_bar, n_up), "glorot_normal", rng, fan_in=n_up, fan_out=n_bar,
                            gain=math.sqrt((1.0 + lam) / 2.0))
        R = init_matrix((n_here, n_bar), "glorot_normal", stream(seed, f"PFA_R{l}"),
                        fan_in=n_bar, fan_out=n_here)
        Bs.append(B.astype(np.float32))
        Rs.append(R)
    return Bs, Rs
