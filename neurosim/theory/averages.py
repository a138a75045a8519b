"""Gaussian averages of ``g(x) = erf(x/√2)`` in closed form, and their Monte Carlo estimates.

Every average is over a zero-mean Gaussian vector ``u`` with covariance ``C`` (dimensionless).
In the teacher–student model of Srinivasan et al. 2023 (App. E) ``u = (λ¹..λᴷ, ν¹..νᴹ, ρ)``:
the student's and teacher's preactivations (eqs. 15–16) and the projection ``ρ = F·x/√D`` of the
input on PEPITA's feedback, with covariance

    C = [[Q, R, f], [Rᵀ, T, f̃], [fᵀ, f̃ᵀ, q_f]]                      (eqs. 20, 23)

The closed forms (Saad & Solla 1995, Phys. Rev. E 52, 4225, their I₂, I₃, I₄ for this ``g``):

* ``I₂(a,b)   = E[g(u_a) g(u_b)]      = (2/π) arcsin(C_ab / √((1+C_aa)(1+C_bb)))``   (eq. 26)
* ``I₃(a,b,c) = E[g'(u_a) u_b g(u_c)] = (2/π) (C_bc(1+C_aa) − C_ab C_ac) / ((1+C_aa) √Λ₃)``,
  ``Λ₃ = (1+C_aa)(1+C_cc) − C_ac²``
* ``I₄(a,b,c,d) = E[g'(u_a) g'(u_b) g(u_c) g(u_d)] = (4/π²) Λ₄^(−1/2) arcsin(Λ₀ / √(Λ₁Λ₂))``,
  ``Λ₄ = (1+C_aa)(1+C_bb) − C_ab²``,
  ``Λ₀ = Λ₄C_cd − C_bc C_bd (1+C_aa) − C_ac C_ad (1+C_bb) + C_ab C_ac C_bd + C_ab C_ad C_bc``,
  ``Λ₁ = Λ₄(1+C_cc) − C_bc²(1+C_aa) − C_ac²(1+C_bb) + 2 C_ab C_ac C_bc``, ``Λ₂`` as ``Λ₁`` with
  ``d`` for ``c``.

All three follow from one identity: ``g'(u) = √(2/π) exp(−u²/2)``, so a factor ``g'(u_a)`` turns
the Gaussian into another one of covariance ``C − C_{·a}C_{a·}/(1+C_aa)`` times ``(1+C_aa)^(−1/2)``;
what remains is ``I₂`` (or Stein's lemma ``E[u_b h(u_c)] = C_bc E[h'(u_c)]`` for ``I₃``).

:func:`moment_averages` combines them into the averages of eqs. 22–23 and 24 for the error
``e = Σ_j v_j g(u_j)`` (``v = (W₂, −W̃₂)``); :func:`monte_carlo_averages` estimates the same
quantities by sampling, with standard errors, and is what the tests check the closed forms with.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import erf

SQRT2 = np.sqrt(2.0)


def g(x):
    """The activation ``g(x) = erf(x/√2)`` (App. E)."""
    return erf(x / SQRT2)


def g_prime(x):
    """``g'(x) = √(2/π) exp(−x²/2)``."""
    return np.sqrt(2.0 / np.pi) * np.exp(-0.5 * np.square(x))


def I2(C: np.ndarray, a, b) -> np.ndarray:
    """``E[g(u_a) g(u_b)]`` (eq. 26); ``a``, ``b`` index arrays, broadcast against each other."""
    return (2.0 / np.pi) * np.arcsin(C[a, b] / np.sqrt((1.0 + C[a, a]) * (1.0 + C[b, b])))


def I3(C: np.ndarray, a, b, c) -> np.ndarray:
    """``E[g'(u_a) u_b g(u_c)]`` (Saad & Solla 1995); index arrays broadcast."""
    caa1 = 1.0 + C[a, a]
    lam3 = caa1 * (1.0 + C[c, c]) - C[a, c] ** 2
    return (2.0 / np.pi) * (C[b, c] * caa1 - C[a, b] * C[a, c]) / (caa1 * np.sqrt(lam3))


def I4(C: np.ndarray, a, b, c, d) -> np.ndarray:
    """``E[g'(u_a) g'(u_b) g(u_c) g(u_d)]`` (Saad & Solla 1995); index arrays broadcast."""
    caa1, cbb1 = 1.0 + C[a, a], 1.0 + C[b, b]
    lam4 = caa1 * cbb1 - C[a, b] ** 2
    lam0 = (lam4 * C[c, d] - C[b, c] * C[b, d] * caa1 - C[a, c] * C[a, d] * cbb1
            + C[a, b] * C[a, c] * C[b, d] + C[a, b] * C[a, d] * C[b, c])
    lam1 = lam4 * (1.0 + C[c, c]) - C[b, c] ** 2 * caa1 - C[a, c] ** 2 * cbb1 + 2.0 * C[a, b] * C[a, c] * C[b, c]
    lam2 = lam4 * (1.0 + C[d, d]) - C[b, d] ** 2 * caa1 - C[a, d] ** 2 * cbb1 + 2.0 * C[a, b] * C[a, d] * C[b, d]
    return (4.0 / np.pi ** 2) * np.arcsin(lam0 / np.sqrt(lam1 * lam2)) / np.sqrt(lam4)


@dataclass(frozen=True)
class Averages:
    """The averages over ``u ~ N(0, C)`` that the AFA ODEs need (``e = Σ_j v_j g(u_j)``).

    ``n = K + M + 1`` variables: students ``0..K-1``, teachers ``K..K+M-1``, ``ρ`` last.

    * ``g_e[k]    = E[g(λᵏ) e]``                  (dW₂/dt, eq. 23)
    * ``gp_u_e[k, b] = E[g'(λᵏ) u_b e]``           (b < K: dQ, eq. 22; K ≤ b < K+M: dR; b = n−1:
      df, eq. 23)
    * ``gp_gp_e2[k, l] = E[g'(λᵏ) g'(λˡ) e²]``     (the η² term of dQ, eq. 22)
    * ``eps_g = E[e²]/2``                          (eq. 24)
    """

    g_e: np.ndarray
    gp_u_e: np.ndarray
    gp_gp_e2: np.ndarray
    eps_g: float


def moment_averages(C: np.ndarray, v: np.ndarray, K: int) -> Averages:
    """Closed forms of :class:`Averages` for covariance ``C`` ((n, n)) and readout ``v``
    (length ``n − 1``: ``W₂`` then ``−W̃₂``)."""
    n = C.shape[0]
    units = np.arange(n - 1)
    k = np.arange(K)
    g_e = I2(C, k[:, None], units[None, :]) @ v
    i3 = I3(C, k[:, None, None], np.arange(n)[None, :, None], units[None, None, :])
    gp_u_e = i3 @ v
    i4 = I4(C, k[:, None, None, None], k[None, :, None, None], units[None, None, :, None],
            units[None, None, None, :])
    gp_gp_e2 = np.einsum("klij,i,j->kl", i4, v, v)
    eps_g = 0.5 * float(v @ I2(C, units[:, None], units[None, :]) @ v)
    return Averages(g_e, gp_u_e, gp_gp_e2, eps_g)


def generalization_error(C: np.ndarray, v: np.ndarray) -> float:
    """``ε_g = ½ Σ_kl W₂ᵏW₂ˡ I₂(k,l) + ½ Σ_mn W̃₂ᵐW̃₂ⁿ I₂(m,n) − Σ_km W₂ᵏW̃₂ᵐ I₂(k,m)`` (eq. 24),
    written as ``½ vᵀ I₂ v`` with ``v = (W₂, −W̃₂)``; ``C`` may omit the ``ρ`` row."""
    units = np.arange(len(v))
    return 0.5 * float(v @ I2(C, units[:, None], units[None, :]) @ v)


def monte_carlo_averages(C: np.ndarray, v: np.ndarray, K: int, samples: int,
                         rng: np.random.Generator, chunk: int = 200_000) -> tuple[Averages, Averages]:
    """Sample estimates of :class:`Averages` and their standard errors (same layout), from
    ``samples`` draws of ``u ~ N(0, C)``."""
    L = np.linalg.cholesky(C)
    n = C.shape[0]
    sums = {key: 0.0 for key in ("g_e", "gp_u_e", "gp_gp_e2", "eps_g")}
    squares = dict(sums)
    done = 0
    while done < samples:
        m = min(chunk, samples - done)
        u = rng.standard_normal((m, n)) @ L.T
        e = g(u[:, : n - 1]) @ v
        gp = g_prime(u[:, :K])
        terms = {
            "g_e": g(u[:, :K]) * e[:, None],
            "gp_u_e": gp[:, :, None] * u[:, None, :] * e[:, None, None],
            "gp_gp_e2": gp[:, :, None] * gp[:, None, :] * (e ** 2)[:, None, None],
            "eps_g": 0.5 * e ** 2,
        }
        for key, x in terms.items():
            sums[key] = sums[key] + x.sum(axis=0)
            squares[key] = squares[key] + (x ** 2).sum(axis=0)
        done += m
    mean = {key: sums[key] / samples for key in sums}
    sem = {key: np.sqrt(np.maximum(squares[key] / samples - mean[key] ** 2, 0.0) / (samples - 1))
           for key in sums}
    return (Averages(mean["g_e"], mean["gp_u_e"], mean["gp_gp_e2"], float(mean["eps_g"])),
            Averages(sem["g_e"], sem["gp_u_e"], sem["gp_gp_e2"], float(sem["eps_g"])))
