"""ODEs of adaptive feedback alignment (AFA) in the online teacher–student task
(Srinivasan et al. 2023, "S", Sec. 4.2 and App. E, eqs. 15–30).

Setting (S eqs. 15–18; every quantity dimensionless). Input ``x ~ N(0, I_D)``; teacher
``y = Σ_m W̃₂ᵐ g(νᵐ)``, ``νᵐ = W̃₁ᵐ·x/√D``; student ``ŷ = Σ_k W₂ᵏ g(λᵏ)``, ``λᵏ = W₁ᵏ·x/√D``;
``g(x) = erf(x/√2)``; error ``e = ŷ − y``. One fresh sample per step μ; AFA updates

    W₁ᵏ ← W₁ᵏ − η fᵏ e g'(λᵏ) x/√D,      W₂ᵏ ← W₂ᵏ − (η/D) e g(λᵏ)           (eqs. 17–18)

with the adaptive feedback ``f = W₁F/D`` (K-vector; ``F`` a fixed D-vector). Time ``t = μ/D``.

Order parameters (eq. 20 and below eq. 23): ``Q = W₁W₁ᵀ/D`` (K×K), ``R = W₁W̃₁ᵀ/D`` (K×M),
``T = W̃₁W̃₁ᵀ/D`` (M×M, fixed), ``f = W₁F/D`` (K), ``f̃ = W̃₁F/D`` (M, fixed), ``q_f = F·F/D``
(fixed). With ``ρ = F·x/√D`` they are the covariance of ``(λ, ν, ρ)``. As D → ∞ they follow::

    dQᵏˡ/dt = −η fᵏ E[g'(λᵏ) λˡ e] − η fˡ E[g'(λˡ) λᵏ e] + η² fᵏ fˡ E[g'(λᵏ) g'(λˡ) e²]   (eq. 22)
    dRᵏᵐ/dt = −η fᵏ E[g'(λᵏ) νᵐ e],   dW₂ᵏ/dt = −η E[g(λᵏ) e],   dfᵏ/dt = −η fᵏ E[ρ g'(λᵏ) e]
                                                                                      (eq. 23)

and ``ε_g = E[e²]/2`` is eq. 24. The averages are closed forms (:mod:`neurosim.theory.averages`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.integrate import solve_ivp
from scipy.optimize import linear_sum_assignment

from neurosim.theory.averages import generalization_error, moment_averages


class TheoryError(ValueError):
    """Bad parameters or initial conditions, or an ODE integration that failed."""


@dataclass(frozen=True)
class Teacher:
    """The fixed part of the order parameters: ``T`` (M×M), ``W2`` = W̃₂ (M), ``f`` = f̃ (M),
    ``q_f`` (scalar)."""

    T: np.ndarray
    W2: np.ndarray
    f: np.ndarray
    q_f: float

    @property
    def M(self) -> int:
        return len(self.W2)


@dataclass(frozen=True)
class State:
    """The evolving order parameters: ``Q`` (K×K), ``R`` (K×M), ``W2`` (K), ``f`` (K)."""

    Q: np.ndarray
    R: np.ndarray
    W2: np.ndarray
    f: np.ndarray

    @property
    def K(self) -> int:
        return len(self.W2)


def covariance(state: State, teacher: Teacher) -> np.ndarray:
    """Covariance of ``(λ¹..λᴷ, ν¹..νᴹ, ρ)``: ``[[Q, R, f], [Rᵀ, T, f̃], [fᵀ, f̃ᵀ, q_f]]``."""
    top = np.hstack([state.Q, state.R, state.f[:, None]])
    mid = np.hstack([state.R.T, teacher.T, teacher.f[:, None]])
    bottom = np.concatenate([state.f, teacher.f, [teacher.q_f]])[None, :]
    return np.vstack([top, mid, bottom])


def readout(state: State, teacher: Teacher) -> np.ndarray:
    """``v = (W₂, −W̃₂)``: the error is ``e = Σ_j v_j g(u_j)`` over student and teacher units."""
    return np.concatenate([state.W2, -teacher.W2])


def check_positive_definite(C: np.ndarray, what: str = "initial condition") -> None:
    """Raise :class:`TheoryError` unless ``C`` is symmetric positive definite (Cholesky)."""
    if not np.all(np.isfinite(C)):
        raise TheoryError(f"{what}: the covariance of the preactivations (λ, ν, ρ) is not finite")
    try:
        np.linalg.cholesky(0.5 * (C + C.T))
    except np.linalg.LinAlgError:
        eig = float(np.linalg.eigvalsh(0.5 * (C + C.T)).min())
        raise TheoryError(
            f"{what}: the covariance [[Q, R, f], [Rᵀ, T, f̃], [fᵀ, f̃ᵀ, q_f]] of the preactivations "
            f"(λ, ν, ρ) is not positive definite (smallest eigenvalue {eig:.3g}); the student, "
            "teacher and feedback vectors must be linearly independent") from None


def check_eta(eta: float) -> float:
    eta = float(eta)
    if not math.isfinite(eta) or eta <= 0:
        raise TheoryError(f"eta: the learning rate must be positive and finite, got {eta}")
    return eta


def eps_g(state: State, teacher: Teacher) -> float:
    """The generalization error of eq. 24 (exact for Gaussian inputs at any D)."""
    return generalization_error(covariance(state, teacher)[:-1, :-1], readout(state, teacher))


def derivatives(state: State, teacher: Teacher, eta: float) -> State:
    """Right-hand sides of eqs. 22–23 (per unit time ``t = μ/D``), as a :class:`State`."""
    K, M = state.K, teacher.M
    avg = moment_averages(covariance(state, teacher), readout(state, teacher), K)
    a_q = state.f[:, None] * avg.gp_u_e[:, :K]  # fᵏ E[g'(λᵏ) λˡ e]
    dQ = -eta * (a_q + a_q.T) + eta ** 2 * np.outer(state.f, state.f) * avg.gp_gp_e2
    dR = -eta * state.f[:, None] * avg.gp_u_e[:, K:K + M]
    dW2 = -eta * avg.g_e
    df = -eta * state.f * avg.gp_u_e[:, K + M]
    return State(dQ, dR, dW2, df)


def _pack(s: State) -> np.ndarray:
    return np.concatenate([s.Q.ravel(), s.R.ravel(), s.W2, s.f])


def _unpack(y: np.ndarray, K: int, M: int) -> State:
    Q = y[:K * K].reshape(K, K)
    R = y[K * K:K * K + K * M].reshape(K, M)
    return State(0.5 * (Q + Q.T), R, y[K * K + K * M:K * K + K * M + K], y[K * K + K * M + K:])


@dataclass(frozen=True)
class Trajectory:
    """Order parameters and ``ε_g`` at times ``t`` (leading axis of every array)."""

    t: np.ndarray
    Q: np.ndarray
    R: np.ndarray
    W2: np.ndarray
    f: np.ndarray
    eps_g: np.ndarray

    def state(self, i: int) -> State:
        return State(self.Q[i], self.R[i], self.W2[i], self.f[i])


def integrate(state0: State, teacher: Teacher, eta: float, t_eval, rtol: float = 1e-8,
              atol: float = 1e-10, blowup: float = 1e6, max_evaluations: int = 20_000) -> Trajectory:
    """Integrate eqs. 22–23 from ``state0`` with ``solve_ivp`` (RK45) and evaluate at ``t_eval``.

    Raises :class:`TheoryError` for a non-positive-definite initial covariance, a non-positive
    ``eta``, or an integration that fails, leaves the covariance's domain, blows up (an order
    parameter beyond ``blowup``) or needs more than ``max_evaluations`` right-hand sides (steps
    shrunk to nothing: a stiff or exploding solution); the message names the time ``t``.
    """
    eta = check_eta(eta)
    check_positive_definite(covariance(state0, teacher))
    t_eval = np.asarray(t_eval, float)
    if t_eval.ndim != 1 or t_eval.size == 0 or t_eval[0] < 0 or np.any(np.diff(t_eval) <= 0):
        raise TheoryError("t_eval: times must be non-negative and increasing")
    K, M = state0.K, teacher.M

    evaluations = 0

    def rhs(t, y):
        nonlocal evaluations
        evaluations += 1
        if evaluations > max_evaluations:
            raise TheoryError(f"ODE integration failed at t = {t:.6g}: more than {max_evaluations} "
                              "evaluations, the step size collapsed (a stiff or exploding solution; "
                              "lower eta)")
        d = _pack(derivatives(_unpack(y, K, M), teacher, eta))
        if not np.all(np.isfinite(d)):
            raise TheoryError(f"ODE integration failed at t = {t:.6g}: the covariance of the "
                              "preactivations left the positive-definite domain (NaN derivatives)")
        return d

    def exploded(t, y):
        return blowup - np.max(np.abs(y))
    exploded.terminal = True

    sol = solve_ivp(rhs, (0.0, float(t_eval[-1])), _pack(state0), t_eval=t_eval, method="RK45",
                    rtol=rtol, atol=atol, events=exploded)
    if sol.status == 1:
        raise TheoryError(f"ODE integration blew up at t = {sol.t_events[0][0]:.6g}: an order "
                          f"parameter exceeded {blowup:g} in magnitude")
    if sol.status != 0:
        last = sol.t[-1] if sol.t.size else 0.0
        raise TheoryError(f"ODE integration failed after t = {last:.6g}: {sol.message}")
    states = [_unpack(y, K, M) for y in sol.y.T]
    return Trajectory(sol.t, np.stack([s.Q for s in states]), np.stack([s.R for s in states]),
                      np.stack([s.W2 for s in states]), np.stack([s.f for s in states]),
                      np.array([eps_g(s, teacher) for s in states]))


@dataclass(frozen=True)
class EarlyExpansion:
    """The early-training expansion (App. E.1) for ``W₂(0) = 0``, ``R(0) = 0``, ``T = I``,
    ``q0ᵏ = Q(0)ᵏᵏ``:

    * ``dRᵏᵐ/dt|₀ = √2 η fᵏ(0) W̃₂ᵐ / (π √(1+q0ᵏ))``                                   (eq. 27)
    * ``dW₂ᵏ/dt = 2 η² fᵏ(0) ‖W̃₂‖² t / (π² (1+q0ᵏ)) + O(t²)``                          (eq. 28)
    * ``dfᵏ/dt|₀ = √2 η fᵏ(0) (W̃₂·f̃) / (π √(1+q0ᵏ))``                           (eq. 29, corrected)
    * ``fᵏ(t) = fᵏ(0) + t dfᵏ/dt|₀ + O(t²)``                                             (eq. 30)

    Eq. 29 as printed has ``√((1+q0)(1+q_f) − fᵏ(0)²)`` where this has ``√(2(1+q0ᵏ))``: the
    average is ``E[ρ g'(λᵏ) g(νᵐ)] = I₃(λᵏ, ρ, νᵐ)``, whose ``Λ₃ = (1+Qᵏᵏ)(1+Tᵐᵐ) − (Rᵏᵐ)²``
    involves the teacher unit inside ``g``, not ``ρ`` (the printed form is ``I₃(λᵏ, νᵐ, ρ)``).
    The two agree only for ``q_f = 1`` and ``f(0) → 0``; eqs. 22–23 and simulations follow this
    form (tests/test_theory.py).
    """

    R_slope: np.ndarray     # (K, M)
    W2_curvature: np.ndarray  # (K,): dW₂/dt ≈ W2_curvature · t
    f0: np.ndarray
    f_slope: np.ndarray     # (K,)

    def at(self, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(R(t), W₂(t), f(t))`` to the orders of eqs. 27–30."""
        return self.R_slope * t, 0.5 * self.W2_curvature * t ** 2, self.f0 + self.f_slope * t


def early_expansion(state0: State, teacher: Teacher, eta: float, atol: float = 1e-8) -> EarlyExpansion:
    """Eqs. 27–30 for ``state0``; raises :class:`TheoryError` unless ``W₂(0) = 0``, ``R(0) = 0``
    and ``T = I`` (within ``atol``), the assumptions of App. E.1."""
    eta = check_eta(eta)
    if np.abs(state0.W2).max() > atol or np.abs(state0.R).max() > atol:
        raise TheoryError("early expansion: needs W2(0) = 0 and R(0) = 0 (App. E.1; --init orthogonal)")
    if np.abs(teacher.T - np.eye(teacher.M)).max() > atol:
        raise TheoryError("early expansion: needs an orthonormal teacher, T = I (App. E.1)")
    q0, f0 = np.diag(state0.Q), state0.f
    scale = np.sqrt(2.0) * eta * f0 / (np.pi * np.sqrt(1.0 + q0))
    return EarlyExpansion(
        R_slope=scale[:, None] * teacher.W2[None, :],
        W2_curvature=2.0 * eta ** 2 * f0 * float(teacher.W2 @ teacher.W2) / (np.pi ** 2 * (1.0 + q0)),
        f0=f0.copy(),
        f_slope=scale * float(teacher.W2 @ teacher.f),
    )


def _angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle (degrees) between vectors along the last axis; NaN where either is zero."""
    na, nb = np.linalg.norm(a, axis=-1), np.linalg.norm(b, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.sum(a * b, axis=-1) / (na * nb)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def matched_teacher(R: np.ndarray, Q: np.ndarray, T: np.ndarray, W2_teacher: np.ndarray) -> np.ndarray:
    """The degenerate solution closest to the student (K = M): ``s_k W̃₂^{π(k)}``, with the
    permutation π of teacher units maximising ``Σ_k |Rᵏᵖ⁽ᵏ⁾| / √(Qᵏᵏ Tᵖᵖ)`` and ``s_k`` the
    sign of ``Rᵏᵖ⁽ᵏ⁾`` (erf is odd: ``(W₁ᵏ, W₂ᵏ) → (−W₁ᵏ, −W₂ᵏ)`` leaves the output unchanged).
    ``R``, ``Q`` may carry leading axes (times, seeds)."""
    overlap = R / np.sqrt(np.diagonal(Q, axis1=-2, axis2=-1)[..., :, None] * np.diag(T)[None, :])
    flat = overlap.reshape(-1, *overlap.shape[-2:])
    out = np.empty(flat.shape[:-1])
    for i, r in enumerate(flat):
        rows, cols = linear_sum_assignment(-np.abs(r))
        out[i, rows] = np.sign(r[rows, cols]) * W2_teacher[cols]
    return out.reshape(overlap.shape[:-1])


def alignment_angles(Q, R, W2, f, teacher: Teacher) -> dict[str, np.ndarray]:
    """The angles of S Fig. 2c, in degrees, along the leading axes of the inputs:

    * ``angle_W2_f_deg``: ``W₂`` vs the adaptive feedback ``f = W₁F/D``;
    * ``angle_W2_teacher_deg``: ``W₂`` vs ``W̃₂`` (K = M only);
    * ``angle_W2_matched_deg``: ``W₂`` vs the closest degenerate solution (:func:`matched_teacher`;
      K = M only).
    """
    out = {"angle_W2_f_deg": _angle(W2, f)}
    if len(teacher.W2) == np.shape(W2)[-1]:
        out["angle_W2_teacher_deg"] = _angle(W2, np.broadcast_to(teacher.W2, np.shape(W2)))
        out["angle_W2_matched_deg"] = _angle(W2, matched_teacher(R, Q, teacher.T, teacher.W2))
    return out
