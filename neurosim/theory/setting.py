"""Initial conditions of the teacher–student task, as order parameters and as weights.

A run starts from order parameters (:class:`~neurosim.theory.afa.State` and
:class:`~neurosim.theory.afa.Teacher`) and realises them as weights of any dimension D with
:func:`realize`: the simulation then starts from weights whose order parameters *are* the ODE's
initial condition (to rounding), and one initial condition can be simulated at several D.

Schemes (:func:`initial_conditions`; weights in the scaled convention of S App. E, entries of
order one, preactivations ``W·x/√D``):

* ``random``: i.i.d. Gaussian weights drawn at dimension ``init_dim``: ``W₁ ~ N(0, q0)``,
  ``W̃₁ ~ N(0, 1)``, ``F ~ N(0, f_scale²)``, ``W₂ ~ N(0, w2_std²)``, ``W̃₂ ~ N(0, 1)``; so
  ``Q ≈ q0·I``, ``T ≈ I``, ``q_f ≈ f_scale²`` and ``R``, ``f``, ``f̃`` are of order
  ``1/√init_dim``.
* ``orthogonal`` (S App. E.1): the same draws, then the teacher's rows orthonormalised
  (``T = I``), the student's made orthogonal to them and to each other with ``‖W₁ᵏ‖²/D = q0``
  (``R = 0``, ``Q = q0·I``), and ``W₂ = 0``; ``F`` as drawn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurosim.feedback import stream
from neurosim.theory.afa import State, Teacher, TheoryError, check_positive_definite, covariance

INITS = ("random", "orthogonal")


@dataclass(frozen=True)
class Weights:
    """Student ``W1`` (K×D), ``W2`` (K); teacher ``teacher_W1`` (M×D), ``teacher_W2`` (M);
    feedback ``F`` (D); scaled convention (preactivation ``W1 x/√D``, ``f = W1 F/D``)."""

    W1: np.ndarray
    W2: np.ndarray
    teacher_W1: np.ndarray
    teacher_W2: np.ndarray
    F: np.ndarray

    @property
    def D(self) -> int:
        return self.W1.shape[1]


def order_parameters(w: Weights) -> tuple[State, Teacher]:
    """``Q = W₁W₁ᵀ/D``, ``R = W₁W̃₁ᵀ/D``, ``f = W₁F/D``; ``T``, ``f̃ = W̃₁F/D``, ``q_f = F·F/D``
    (S eq. 20 and below eq. 23)."""
    D = w.D
    W1, Wt = np.asarray(w.W1, float), np.asarray(w.teacher_W1, float)
    F = np.asarray(w.F, float)
    state = State(W1 @ W1.T / D, W1 @ Wt.T / D, np.asarray(w.W2, float).copy(), W1 @ F / D)
    teacher = Teacher(Wt @ Wt.T / D, np.asarray(w.teacher_W2, float).copy(), Wt @ F / D, float(F @ F / D))
    return state, teacher


def check_sizes(K: int, M: int, D: int | None = None) -> None:
    """K, M ≥ 1; D ≥ K + M + 1 (room for K + M + 1 independent student, teacher and feedback
    vectors, so that their covariance can be positive definite)."""
    if int(K) < 1:
        raise TheoryError(f"K: the student needs at least one hidden unit, got {K}")
    if int(M) < 1:
        raise TheoryError(f"M: the teacher needs at least one hidden unit, got {M}")
    if D is not None and int(D) < max(2, K + M + 1):
        raise TheoryError(f"D: the input dimension must be at least K + M + 1 = {K + M + 1} "
                          f"(and at least 2), got {D}")


def initial_conditions(init: str, K: int, M: int, init_dim: int, seed: int = 0, q0: float = 1.0,
                       w2_std: float = 0.0, f_scale: float = 1.0) -> tuple[State, Teacher]:
    """Initial order parameters by ``init`` (module docstring), drawn with ``seed``."""
    if init not in INITS:
        raise TheoryError(f"init: unknown initialization {init!r}; choose one of: {', '.join(INITS)}")
    check_sizes(K, M, init_dim)
    for name, value in (("q0", q0), ("f_scale", f_scale)):
        if not np.isfinite(value) or value <= 0:
            raise TheoryError(f"{name}: must be positive and finite, got {value}")
    if not np.isfinite(w2_std) or w2_std < 0:
        raise TheoryError(f"w2_std: must be non-negative and finite, got {w2_std}")
    rng = stream(seed, "teacher-student-init")
    W1 = np.sqrt(q0) * rng.standard_normal((K, init_dim))
    Wt = rng.standard_normal((M, init_dim))
    F = f_scale * rng.standard_normal(init_dim)
    W2 = w2_std * rng.standard_normal(K)
    Wt2 = rng.standard_normal(M)
    if init == "orthogonal":
        basis, _ = np.linalg.qr(np.vstack([Wt, W1]).T)  # (init_dim, M + K), orthonormal columns
        Wt = np.sqrt(init_dim) * basis[:, :M].T
        W1 = np.sqrt(q0 * init_dim) * basis[:, M:].T
        W2 = np.zeros(K)
    state, teacher = order_parameters(Weights(W1, W2, Wt, Wt2, F))
    check_positive_definite(covariance(state, teacher))
    return state, teacher


def realize(state: State, teacher: Teacher, D: int, seed: int = 0) -> Weights:
    """Weights of dimension ``D`` whose order parameters equal ``(state, teacher)``: the rows
    ``√D·L·U``, with ``L`` the Cholesky factor of the covariance of ``(λ, ν, ρ)`` and ``U`` a
    random orthonormal frame of ``K + M + 1`` rows in R^D (drawn with ``seed``)."""
    K, M = state.K, teacher.M
    check_sizes(K, M, D)
    C = covariance(state, teacher)
    check_positive_definite(C)
    frame, _ = np.linalg.qr(stream(seed, "teacher-student-frame").standard_normal((D, K + M + 1)))
    rows = np.sqrt(D) * np.linalg.cholesky(C) @ frame.T
    return Weights(rows[:K], state.W2.copy(), rows[K:K + M], teacher.W2.copy(), rows[-1])
