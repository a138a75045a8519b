"""PEPITA and its family: learning from two forward passes, no backward pass.

Notation (Dellaferrera & Kreiman 2022, "D&K"; Srinivasan et al. 2023, "S"): ``forward(x)``
returns the activities ``[h_0 = x, h_1, ..., h_L]`` with fixed dropout masks; ``e = h_L - y*``;
``F`` is ``(N_0 × N_L)``; ``s`` is the modulation sign (+1 in D&K, -1 in S). Updates are batch
means of the per-sample updates and are *subtracted* by the optimizer (``W <- W - eta dW``).

* PEPITA (D&K eqs. 1-5, Algorithm 1):
  ``h^err = forward(x + s F e)``; ``dW_l = (h_l - h_l^err) (h_{l-1}^err)^T`` for l < L
  (``h_0^err = x + s F e``); output ``dW_L = e (h_{L-1}^err)^T`` with the first-pass error ``e``
  as Algorithm 1 writes it (the official code uses the modulated pass's error instead).
* Controls (D&K Appendix D): F = 0 (eq. 10: hidden layers frozen, output by delta rule) and
  random perturbation (eq. 11: input ``x + s F (k r)``, ``r ~ U[0,1)``).
* PEPITA-Hebbian (S eqs. 7, 13-14): ``dW_l = h_l h_{l-1}^T - h_l^err (h_{l-1}^err)^T``,
  output ``dW_L = h_L h_{L-1}^T - y* (h_{L-1}^err)^T``.
* PEPITA-time-local (S Algorithm 2): the Hebbian term of the first pass is applied at once,
  then the second pass runs on the updated weights and its anti-Hebbian term is applied.
* AFA (S eq. 11): ``dW_1 = [(W_1 F e) ⊙ h_1'] x^T`` for s = -1. Deeper layers use the same
  linearisation ``h_l - h_l^err ≈ -J_l (s F e)``, with ``J_l`` the Jacobian of ``h_l`` w.r.t. the
  input (a forward-mode product, ``torch.func.jvp``); output by the delta rule on the clean pass.
* PEPITA + weight mirroring (S Sec. 6.1): ``F = F_1 ... F_L``, ``F_l`` shaped like ``W_l^T``,
  each mirrored to ``W_l^T``; after each mirror step every ``F_l`` is multiplied by
  ``(sigma_F(0)/sigma_F(t))^(1/L)`` so the product keeps its initial standard deviation.
  Uses s = -1, as S does for this reason.

Every function also takes a seed batch (a leading seed dimension on every tensor): samples are
dimension -2, transposes ``.mT``.
"""

from __future__ import annotations

from typing import Callable

import torch

from neurosim.feedback import factorized_F, pepita_F
from rate_models.network import linear
from rate_models.rules.base import Rule, product_alignment
from rate_models.rules.feedback import mirror_grad

Forward = Callable[..., list]  # forward(x, a1=None) -> [h_0, ..., h_L]
Update = tuple  # (dW, db) with db the bias update


def _outer(post: torch.Tensor, pre: torch.Tensor) -> Update:
    """Batch mean of ``post pre^T`` and of ``post`` (the bias' presynaptic term is 1)."""
    scaled = post / post.shape[-2]  # scale the small factor, not the (N_l × N_{l-1}) product
    return scaled.mT @ pre, scaled.sum(-2)


def modulated_input(x: torch.Tensor, signal: torch.Tensor, F: torch.Tensor, sign: float) -> torch.Tensor:
    """``x + s F signal`` for a batch (rows are samples)."""
    return x + sign * (signal @ F.mT)


def two_passes(forward: Forward, x, target, F, sign: float, perturbation=None, W1=None, b1=None):
    """Activities of the standard and the modulated pass and the error ``e = h_L - y*``.

    The modulated input is ``x + s F e`` (or ``x + s F perturbation``). With the first layer's
    ``W1`` (and ``b1``) given, the second pass reuses the first: ``W_1 (x + s F e) + b_1 =
    a_1 + s (W_1 F) e`` — the same arithmetic without a second input-layer product.
    """
    if W1 is None:
        hs = forward(x)
        e = hs[-1] - target
        signal = e if perturbation is None else perturbation
        return hs, forward(modulated_input(x, signal, F, sign)), e
    a1 = linear(x, W1, b1)
    hs = forward(x, a1)
    e = hs[-1] - target
    signal = e if perturbation is None else perturbation
    a1_err = a1 + sign * (signal @ (F.mT @ W1.mT))  # (W_1 F)^T, in the shape BLAS does fast
    return hs, forward(modulated_input(x, signal, F, sign), a1_err), e


def pepita_updates(forward: Forward, x, target, F, sign: float = 1.0, perturbation=None,
                   W1=None, b1=None) -> tuple[list, list]:
    """PEPITA's updates (D&K Algorithm 1); ``perturbation`` replaces ``e`` in the input
    modulation (random-perturbation control). Returns ``([(dW_l, db_l)], hs)``."""
    hs, hs_err, e = two_passes(forward, x, target, F, sign, perturbation, W1, b1)
    L = len(hs) - 1
    updates = [_outer(hs[l] - hs_err[l], hs_err[l - 1]) for l in range(1, L)]
    updates.append(_outer(e, hs_err[L - 1]))
    return updates, hs


def hebbian_phase(hs: list) -> list:
    """First (Hebbian) term of PEPITA-Hebbian/time-local: ``h_l h_{l-1}^T`` for every layer."""
    return [_outer(hs[l], hs[l - 1]) for l in range(1, len(hs))]


def anti_hebbian_phase(hs_err: list, target) -> list:
    """Second term: ``-h_l^err (h_{l-1}^err)^T``, with ``y*`` in place of ``h_L^err``."""
    L = len(hs_err) - 1
    ups = [_outer(-hs_err[l], hs_err[l - 1]) for l in range(1, L)]
    ups.append(_outer(-target, hs_err[L - 1]))
    return ups


def pepita_hebbian_updates(forward: Forward, x, target, F, sign: float = 1.0,
                           W1=None, b1=None) -> tuple[list, list]:
    """PEPITA-Hebbian (S eqs. 13-14): both phases at the same weights, summed."""
    hs, hs_err, _ = two_passes(forward, x, target, F, sign, None, W1, b1)
    plus, minus = hebbian_phase(hs), anti_hebbian_phase(hs_err, target)
    return [(a[0] + b[0], a[1] + b[1]) for a, b in zip(plus, minus)], hs


def afa_updates(forward: Forward, x, target, F, sign: float = -1.0) -> tuple[list, list]:
    """AFA (S eq. 11 and its layer-wise linearisation): ``dW_l = (-J_l s F e) h_{l-1}^T``."""
    hs = forward(x)
    e = hs[-1] - target
    _, tangents = torch.func.jvp(forward, (x,), (sign * (e @ F.mT),))
    L = len(hs) - 1
    updates = [_outer(-tangents[l], hs[l - 1]) for l in range(1, L)]
    updates.append(_outer(e, hs[L - 1]))
    return updates, hs


class Pepita(Rule):
    """PEPITA (``variant`` selects the control / approximation)."""

    variant = "pepita"

    def __init__(self, net, cfg, seed):
        super().__init__(net, cfg, seed)
        F = pepita_F(net.sizes[0], net.sizes[-1], seed, cfg.f_scale, cfg.f_distribution)
        self.register_buffer("F", torch.zeros_like(torch.from_numpy(F)) if self.variant == "pepita-f0"
                             else torch.from_numpy(F))
        self.sign = cfg.modulation_sign

    def projection(self) -> torch.Tensor:
        return self.F

    def forward_fn(self, masks) -> Forward:
        return lambda x, a1=None: self.net.forward_all(x, masks, a1)

    def batch_updates(self, x, target, masks):
        fwd, F = self.forward_fn(masks), self.projection()
        first = {"W1": self.net.weights[0], "b1": self.net.bias(0)}
        if self.variant == "pepita-random":
            r = self.net.noise.rand((x.shape[-2], F.shape[-1]), x.dtype, x.device)
            return pepita_updates(fwd, x, target, F, self.sign,
                                  perturbation=self.cfg.random_perturbation_k * r, **first)
        if self.variant in ("pepita-hebbian", "pepita-time-local"):
            return pepita_hebbian_updates(fwd, x, target, F, self.sign, **first)
        if self.variant == "pepita-afa":
            return afa_updates(fwd, x, target, F, self.sign)
        return pepita_updates(fwd, x, target, F, self.sign, **first)

    def set_grads(self, updates) -> None:
        """Updates into ``.grad``, in each parameter's dtype (autocast may compute them in bf16)."""
        for l, (dW, db) in enumerate(updates):
            W = self.net.weights[l]
            W.grad = dW.to(W.dtype)
            if self.net.biases is not None:
                self.net.biases[l].grad = db.to(self.net.biases[l].dtype)

    def compute_grads(self, x, target, masks):
        with torch.no_grad():
            updates, hs = self.batch_updates(x, target, masks)
            self.set_grads(updates)
            return self.net.loss_from_output(hs[-1], target)

    def alignment(self):
        """∠(F^T, W_L ... W_1): ~90° at initialization, ~120° after training (D&K Fig. 3b)."""
        if not bool(self.projection().any()):
            return {}  # F = 0: the angle is undefined
        W = [w.detach() for w in self.net.weights]
        product = W[0]
        for w in W[1:]:
            product = w @ product
        return {"angle_F_W_deg": product_alignment(self.projection().t(), product)}


class PepitaF0(Pepita):
    variant = "pepita-f0"


class PepitaRandom(Pepita):
    variant = "pepita-random"


class PepitaHebbian(Pepita):
    variant = "pepita-hebbian"


class PepitaAFA(Pepita):
    variant = "pepita-afa"


class PepitaTimeLocal(Pepita):
    """Algorithm 2 of S: two optimizer steps per batch, one after each pass."""

    variant = "pepita-time-local"

    def train_step(self, x, target, optimizer):
        masks = self.net.dropout_masks(x.shape[-2], x.device)
        fwd = self.forward_fn(masks)
        with torch.no_grad():
            optimizer.zero_grad(set_to_none=True)
            with self.autocast(x.device):
                hs = fwd(x)
                self.set_grads(hebbian_phase(hs))
            optimizer.step()  # W+ = W - eta h h^T
            with self.autocast(x.device):
                hs_err = fwd(modulated_input(x, hs[-1] - target, self.projection(), self.sign))
                optimizer.zero_grad(set_to_none=True)
                self.set_grads(anti_hebbian_phase(hs_err, target))
            optimizer.step()  # W = W+ + eta h_err h_err^T
            return self.net.loss_from_output(hs[-1], target)


class PepitaWeightMirror(Pepita):
    """PEPITA with ``F = F_1 ... F_L`` whose factors are mirrored to ``W_l^T`` (s = -1)."""

    variant = "pepita-wm"

    def __init__(self, net, cfg, seed):
        if cfg.modulation_sign != -1.0:
            raise ValueError("pepita-wm modulates the input by x - F e (Srinivasan et al. 2023): "
                             "set modulation_sign to -1")
        super().__init__(net, cfg, seed)
        target_std = float(self.F.std())
        del self.F
        self.factors = torch.nn.ParameterList(
            [torch.nn.Parameter(torch.from_numpy(f), requires_grad=False)
             for f in factorized_F(net.sizes, seed, target_std)])
        self.register_buffer("sigma_F0", torch.tensor(target_std))
        self.mirror_optimizer = torch.optim.SGD(list(self.factors), lr=cfg.wm_lr,
                                                weight_decay=cfg.wm_weight_decay or 0.0)

    def projection(self):
        F = self.factors[0]
        for f in self.factors[1:]:
            F = F @ f
        return F

    def mirror_step(self, batch: int) -> None:
        for W, f in zip(self.net.weights, self.factors):
            f.grad = mirror_grad(W, batch, self.cfg.wm_noise_std, self.net.noise)
        self.mirror_optimizer.step()
        with torch.no_grad():
            # population std (ddof 0), as factorized_F sets the initial product to sigma_F0;
            # one std per seed of a seed batch
            std = self.projection().std(dim=(-2, -1), correction=0, keepdim=True)
            c = (self.sigma_F0[..., None, None] / std) ** (1.0 / len(self.factors))
            for f in self.factors:
                f.mul_(c)

    def after_step(self):
        self.mirror_step(self.cfg.batch_size)

    def pre_train(self, n_steps, batch_size):
        for _ in range(n_steps):
            self.mirror_step(batch_size)
