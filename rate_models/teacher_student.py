"""Online SGD in the teacher–student task of Srinivasan et al. 2023 ("S") App. E, several seeds
at once: the simulation that :mod:`neurosim.theory.afa`'s ODEs describe.

Every step draws one fresh sample ``x ~ N(0, I_D)`` per seed (seeds differ only in their sample
streams; all start from the same weights). Weights are held in the raw convention of a rate
network, ``h₁ = g(W₁ʳ x)``, ``ŷ = W₂ h₁``: ``W₁ʳ = W₁/√D`` and ``Fʳ = F/√D`` for S's scaled
``W₁``, ``F``; then ``λ = W₁ʳx``, ``Q = W₁ʳW₁ʳᵀ``, ``R = W₁ʳW̃₁ʳᵀ`` and ``f = W₁ʳFʳ``, and both
layers learn with rate ``η/D`` (S's ``η₁ = η`` on the scaled ``W₁`` is ``η/D`` on ``W₁ʳ``).

* ``afa``: S eq. 17, ``W₁ʳ ← W₁ʳ − (η/D) (f ⊙ g'(λ)) e xᵀ``, ``W₂ ← W₂ − (η/D) e g(λ)ᵀ``, with
  ``f = W₁ʳFʳ`` of the current weights.
* ``pepita``: the rate backend's rule (:func:`rate_models.rules.pepita.pepita_updates`: two
  forward passes, the second on ``x − Fʳe``, modulation sign −1 as in S), applied with rate
  ``η/D``.

The recorded order parameters give ``ε_g`` exactly (eq. 24 holds at any D for Gaussian inputs).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from neurosim.theory.afa import TheoryError
from neurosim.theory.setting import Weights
from rate_models.rules.pepita import pepita_updates

RULES = ("afa", "pepita")
SQRT2 = math.sqrt(2.0)


def _g(x: torch.Tensor) -> torch.Tensor:
    return torch.erf(x / SQRT2)


def _g_prime(x: torch.Tensor) -> torch.Tensor:
    return math.sqrt(2.0 / math.pi) * torch.exp(-0.5 * x * x)


@dataclass(frozen=True)
class Simulation:
    """Order parameters at the recorded steps, per seed: ``Q`` (S, n, K, K), ``R`` (S, n, K, M),
    ``W2`` (S, n, K), ``f`` (S, n, K); ``steps`` (n,), ``t = steps / D``."""

    rule: str
    D: int
    seeds: tuple[int, ...]
    steps: np.ndarray
    Q: np.ndarray
    R: np.ndarray
    W2: np.ndarray
    f: np.ndarray
    seconds: float

    @property
    def t(self) -> np.ndarray:
        return self.steps / self.D


class _Student:
    """A seed batch of students (raw convention) and the fixed teacher and feedback."""

    def __init__(self, w: Weights, n_seeds: int, dtype: torch.dtype):
        D = w.D
        def as_t(a):
            return torch.as_tensor(np.asarray(a, float), dtype=dtype)

        self.D = D
        self.W1 = as_t(w.W1 / math.sqrt(D)).expand(n_seeds, -1, -1).clone()  # (S, K, D)
        self.W2 = as_t(w.W2)[None, None, :].expand(n_seeds, 1, -1).clone()  # (S, 1, K)
        self.teacher_W1 = as_t(w.teacher_W1 / math.sqrt(D))  # (M, D)
        self.teacher_W2 = as_t(w.teacher_W2)  # (M,)
        self.F = as_t(w.F / math.sqrt(D))[:, None]  # (D, 1): PEPITA's F, shaped (N_0, N_L)

    def forward(self, x: torch.Tensor, a1: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Activities ``[x, h₁, ŷ]`` (the forward the rate rules take); ``x`` (S, 1, D)."""
        if a1 is None:
            a1 = x @ self.W1.mT
        h1 = _g(a1)
        return [x, h1, h1 @ self.W2.mT]

    def step(self, rule: str, x: torch.Tensor, y: torch.Tensor, lr: float) -> None:
        """One online step on samples ``x`` (S, 1, D) with targets ``y`` (S, 1, 1)."""
        if rule == "afa":
            a1 = x @ self.W1.mT  # (S, 1, K): λ
            h1 = _g(a1)
            e = h1 @ self.W2.mT - y  # (S, 1, 1)
            f = (self.W1 @ self.F).mT  # (S, 1, K): f = W₁ʳFʳ
            self.W1 -= lr * (f * _g_prime(a1) * e).mT @ x
            self.W2 -= lr * e * h1
        else:
            (dW1, _), (dW2, _) = pepita_updates(self.forward, x, y, self.F, sign=-1.0, W1=self.W1)[0]
            self.W1 -= lr * dW1
            self.W2 -= lr * dW2

    def order_parameters(self) -> tuple[np.ndarray, ...]:
        W1 = self.W1
        Q = (W1 @ W1.mT).numpy()
        R = (W1 @ self.teacher_W1.T).numpy()
        f = (W1 @ self.F)[..., 0].numpy()
        return Q, R, self.W2[:, 0, :].numpy().copy(), f


def simulate(weights: Weights, rule: str, eta: float, record_steps: Sequence[int],
             seeds: Sequence[int], chunk: int = 4096, dtype: torch.dtype = torch.float64,
             blowup: float = 1e6, progress: bool = False) -> Simulation:
    """Online SGD of ``rule`` (``afa`` or ``pepita``) from ``weights`` with learning rate
    ``eta`` (S's η; the raw rate is η/D), one seed per entry of ``seeds`` (seed ``s`` draws its
    samples from ``torch.Generator().manual_seed(s)``), recording the order parameters after
    each of ``record_steps`` (increasing, ≥ 0; step 0 is the initial condition).

    Raises :class:`~neurosim.theory.afa.TheoryError` (a ``ValueError``) naming the step and
    time ``t`` at which a recorded order parameter (``Q`` or ``W₂``) is no longer finite or
    exceeds ``blowup`` in magnitude.
    """
    import time

    if rule not in RULES:
        raise TheoryError(f"rule: unknown simulation rule {rule!r}; choose one of: {', '.join(RULES)}")
    record = np.asarray(record_steps, dtype=np.int64)
    if record.ndim != 1 or record.size == 0 or record[0] < 0 or np.any(np.diff(record) <= 0):
        raise TheoryError("record_steps: steps must be non-negative and increasing")
    D = weights.D
    lr = float(eta) / D
    student = _Student(weights, len(seeds), dtype)
    gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
    total = int(record[-1])
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=total, desc=f"{rule} D={D}", unit="step", mininterval=1.0)
    rows: list = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the steps are tiny: extra threads only add synchronisation
    start = time.perf_counter()
    try:
        _run(student, rule, record, gens, lr, chunk, bar, rows, blowup)
    finally:
        torch.set_num_threads(threads)
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - start
    Q, R, W2, f = (np.stack([r[i] for r in rows], axis=1) for i in range(4))
    return Simulation(rule, D, tuple(int(s) for s in seeds), record, Q, R, W2, f, seconds)


def _run(student: _Student, rule: str, record: np.ndarray, gens, lr: float, chunk: int, bar,
         rows: list, blowup: float) -> None:
    """The step loop of :func:`simulate`; appends the recorded order parameters to ``rows``."""
    D, dtype = student.D, student.W1.dtype
    total = int(record[-1])
    done, next_record = 0, 0
    with torch.no_grad():
        while True:
            while next_record < record.size and record[next_record] == done:
                Q, R, W2, f = student.order_parameters()
                size = max(float(np.abs(Q).max()), float(np.abs(W2).max()))
                if not size <= blowup:  # also catches NaN
                    raise TheoryError(f"{rule} simulation diverged at step {done} (t = {done / D:.6g}): "
                                      f"an order parameter reached {size:.3g} (limit {blowup:g}); "
                                      "lower eta (or f_scale for pepita)")
                rows.append((Q, R, W2, f))
                next_record += 1
            if done == total:
                break
            n = min(chunk, int(record[next_record]) - done)  # a chunk ends at the next record
            x = torch.stack([torch.randn(n, D, generator=g, dtype=dtype) for g in gens])  # (S, n, D)
            y = _g(x @ student.teacher_W1.T) @ student.teacher_W2  # (S, n)
            for i in range(n):
                student.step(rule, x[:, i:i + 1, :], y[:, i, None, None], lr)
            done += n
            if bar is not None:
                bar.update(n)
