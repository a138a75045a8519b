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

**Convolutional forms** (D&K Sec. 3.3 and Fig. 2). Two forward passes under ``no_grad``, as
the FC rule: the standard pass on ``x`` gives ``e = h_L - y*``; the modulated pass runs on
``x + s F e`` with ``F`` ``(C H W, N_L)`` (the FC ``F`` with the image flattened; fan-in ``C H W``, e.g. 32·32·3 in the
paper's Table 2) reshaped to the input image. For a convolution, Sec. 3.3's four steps are::

    1. for every output position p of every sample: (h_l - h_l^err)[p] times the input patch of
       the modulated pass that produced p (the presynaptic term is the modulated pass, eq. 4);
    2. sum those products;  3. divide by their number (N samples × H_out W_out positions);
    4. subtract the result with the optimizer (eq. 6).

Steps 1-3 over a batch are one ``conv2d_weight``:

    dW_l = conv2d_weight(h_{l-1}^err, W_l.shape, h_l - h_l^err) / (N H_l W_l)

with ``h_l`` the layer's activity after its nonlinearity and before pooling (the map the filter
produced) and ``h_{l-1}^err`` the layer's input in the modulated pass (after the previous layer's
pooling; ``x + s F e`` for the first layer). Hidden linear layers use eq. 4 and the output layer
eq. 5 ``dW_L = e (h_{L-1}^err)^T``, batch means, exactly as the FC rule. Biases take the same
postsynaptic terms with a presynaptic 1.

Variants: ``pepita-f0`` (F = 0, Appendix D eq. 10) and ``pepita-random`` (input ``x + s F (k r)``,
eq. 11). PEPITA has no form for residual connections or batch norm in the papers, so the rule
accepts only the plain convolutional architectures.
"""

from __future__ import annotations

from typing import Callable

import torch

from neurosim.feedback import factorized_F, pepita_F
from rate_models.layers import Conv, Pass
from rate_models.network import linear
from rate_models.rules.base import ConvRule, Forms, Rule, as_numpy, product_alignment
from rate_models.rules.feedback import mirror_grad


Forward = Callable[..., list]  # forward(x, a1=None) -> [h_0, ..., h_L]
Update = tuple  # (dW, db) with db the bias update


def batch_outer(post: torch.Tensor, pre: torch.Tensor) -> Update:
    """Batch mean of ``post pre^T`` and of ``post`` (the bias' presynaptic term is 1)."""
    scaled = post / post.shape[-2]  # scale the small factor, not the (N_l × N_{l-1}) product
    return scaled.mT @ pre, scaled.sum(-2)


def input_modulation(signal: torch.Tensor, F: torch.Tensor, sign: float) -> torch.Tensor:
    """``s F signal`` for a batch (rows are samples): what the second pass adds to the input
    (D&K eq. 1; the spiking form adds it to the input layer's activity)."""
    return sign * (signal @ F.mT)


def modulated_input(x: torch.Tensor, signal: torch.Tensor, F: torch.Tensor, sign: float) -> torch.Tensor:
    """``x + s F signal`` for a batch (rows are samples)."""
    return x + input_modulation(signal, F, sign)


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
    updates = [batch_outer(hs[l] - hs_err[l], hs_err[l - 1]) for l in range(1, L)]
    updates.append(batch_outer(e, hs_err[L - 1]))
    return updates, hs


def hebbian_phase(hs: list) -> list:
    """First (Hebbian) term of PEPITA-Hebbian/time-local: ``h_l h_{l-1}^T`` for every layer."""
    return [batch_outer(hs[l], hs[l - 1]) for l in range(1, len(hs))]


def anti_hebbian_phase(hs_err: list, target) -> list:
    """Second term: ``-h_l^err (h_{l-1}^err)^T``, with ``y*`` in place of ``h_L^err``."""
    L = len(hs_err) - 1
    ups = [batch_outer(-hs_err[l], hs_err[l - 1]) for l in range(1, L)]
    ups.append(batch_outer(-target, hs_err[L - 1]))
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
    updates = [batch_outer(-tangents[l], hs[l - 1]) for l in range(1, L)]
    updates.append(batch_outer(e, hs[L - 1]))
    return updates, hs


def conv_pepita_update(pre_err: torch.Tensor, post_diff: torch.Tensor, layer: Conv) -> tuple:
    """``(dW, db)`` of a convolution from its modulated-pass input ``(N, C_in, H, W)`` and the
    postsynaptic difference ``h - h^err`` ``(N, C_out, H_out, W_out)``: Sec. 3.3 steps 1-3."""
    count = post_diff.shape[0] * post_diff.shape[2] * post_diff.shape[3]
    dW = torch.nn.grad.conv2d_weight(pre_err, layer.weight.shape, post_diff, layer.stride, layer.padding)
    return dW / count, post_diff.sum((0, 2, 3)) / count



class Pepita(Rule):
    """PEPITA (D&K Algorithm 1). Its variants override :meth:`initial_F` (the F = 0 control) and
    :meth:`batch_updates` (the random control, Hebbian, AFA) or ``train_step`` (time-local)."""

    def __init__(self, net, cfg, seed):
        super().__init__(net, cfg, seed)
        F = pepita_F(net.sizes[0], net.sizes[-1], seed, cfg.pepita.f_scale, cfg.pepita.f_distribution)
        self.register_buffer("F", self.initial_F(torch.from_numpy(F)))
        self.sign = cfg.pepita.modulation_sign

    @staticmethod
    def initial_F(F: torch.Tensor) -> torch.Tensor:
        """The ``F`` the rule keeps, given the one drawn from the seed."""
        return F

    def projection(self) -> torch.Tensor:
        return self.F

    def forward_fn(self, masks) -> Forward:
        return lambda x, a1=None: self.net.forward_all(x, masks, a1)

    def first_layer(self) -> dict:
        """``W_1`` and ``b_1``, with which the second pass reuses the first's input-layer product
        (:func:`two_passes`)."""
        return {"W1": self.net.weights[0], "b1": self.net.bias(0)}

    def batch_updates(self, x, target, masks):
        """``([(dW_l, db_l)], hs)`` of one batch."""
        return pepita_updates(self.forward_fn(masks), x, target, self.projection(), self.sign,
                              **self.first_layer())

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

    def feedback_blocks(self, layers):
        """``F``, ``output -> input`` (pepita-wm: the product ``F_1 ⋯ F_L``)."""
        return [], [(layers[-1], layers[0], as_numpy(self.projection()).T)]


class PepitaF0(Pepita):
    """F = 0 (D&K Appendix D eq. 10): hidden layers frozen, output by the delta rule."""

    @staticmethod
    def initial_F(F):
        return torch.zeros_like(F)


class PepitaRandom(Pepita):
    """Input ``x + s F (k r)``, ``r ~ U[0,1)`` from the step noise (D&K Appendix D eq. 11)."""

    def batch_updates(self, x, target, masks):
        F = self.projection()
        r = self.net.noise.rand((x.shape[-2], F.shape[-1]), x.dtype, x.device)
        return pepita_updates(self.forward_fn(masks), x, target, F, self.sign,
                              perturbation=self.cfg.pepita.random_perturbation_k * r, **self.first_layer())


class PepitaHebbian(Pepita):
    """S eqs. 13-14: both phases at the same weights."""

    def batch_updates(self, x, target, masks):
        return pepita_hebbian_updates(self.forward_fn(masks), x, target, self.projection(), self.sign,
                                      **self.first_layer())


class PepitaAFA(Pepita):
    """S eq. 11 and its layer-wise linearisation."""

    def batch_updates(self, x, target, masks):
        return afa_updates(self.forward_fn(masks), x, target, self.projection(), self.sign)


class PepitaTimeLocal(PepitaHebbian):
    """Algorithm 2 of S: two optimizer steps per batch, one after each pass (``hidden_updates``
    reports the Hebbian form's update, both phases at the same weights)."""

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

    def __init__(self, net, cfg, seed):
        if cfg.pepita.modulation_sign != -1.0:
            raise ValueError("pepita-wm modulates the input by x - F e (Srinivasan et al. 2023): "
                             "set modulation_sign to -1")
        super().__init__(net, cfg, seed)
        target_std = float(self.F.std())
        del self.F
        self.factors = torch.nn.ParameterList(
            [torch.nn.Parameter(torch.from_numpy(f), requires_grad=False)
             for f in factorized_F(net.sizes, seed, target_std)])
        self.register_buffer("sigma_F0", torch.tensor(target_std))
        self.mirror_optimizer = torch.optim.SGD(list(self.factors), lr=cfg.mirror.wm_lr,
                                                weight_decay=cfg.mirror.wm_weight_decay or 0.0)

    def projection(self):
        F = self.factors[0]
        for f in self.factors[1:]:
            F = F @ f
        return F

    def mirror_step(self, batch: int) -> None:
        for W, f in zip(self.net.weights, self.factors):
            f.grad = mirror_grad(W, batch, self.cfg.mirror.wm_noise_std, self.net.noise)
        self.mirror_optimizer.step()
        with torch.no_grad():
            # population std (ddof 0), as factorized_F sets the initial product to sigma_F0;
            # one std per seed of a seed batch
            std = self.projection().std(dim=(-2, -1), correction=0, keepdim=True)
            c = (self.sigma_F0[..., None, None] / std) ** (1.0 / len(self.factors))
            for f in self.factors:
                f.mul_(c)

    def after_step(self):
        self.mirror_step(self.cfg.training.batch_size)

    def pre_train(self, n_steps, batch_size):
        for _ in range(n_steps):
            self.mirror_step(batch_size)


class ConvPepita(ConvRule):
    """PEPITA on a plain convolutional network; its controls override :meth:`initial_F` and
    :meth:`modulation_signal`."""

    @classmethod
    def check_architecture(cls, rule, net):
        if not net.plain_feedforward:
            raise ValueError(
                f"rule {rule!r} has no form for arch {net.name!r}: PEPITA's update (Sec. 3.3) is "
                "defined for plain conv/pooling/linear stacks, not residual connections or batch "
                "norm; use arch pepita-conv, drtp-conv-mnist or drtp-conv-cifar10, or a "
                "feedback rule (bp, fa, sign-symmetry, kolen-pollack, dfa, sdfa, drtp, pfa, pfa-o)")

    def __init__(self, net, cfg, seed):
        super().__init__(net, cfg, seed)
        F = torch.from_numpy(pepita_F(net.input_dim, net.n_out, seed, cfg.pepita.f_scale, cfg.pepita.f_distribution))
        self.register_buffer("F", self.initial_F(F))
        self.sign = cfg.pepita.modulation_sign

    @staticmethod
    def initial_F(F: torch.Tensor) -> torch.Tensor:
        """The ``F`` the rule keeps, given the one drawn from the seed."""
        return F

    def modulation_signal(self, e: torch.Tensor) -> torch.Tensor:
        """What ``F`` projects onto the input of the second pass: the error ``e``."""
        return e

    def passes(self, x, target, masks) -> tuple[list, list, torch.Tensor, torch.Tensor]:
        """Records ``[(input, activity)]`` of the standard and the modulated pass, ``e`` and ``h_L``."""
        x = x.reshape(len(x), -1)
        record, record_err = [], []
        h_out = self.net.phi(self.net.n_layers - 1, self.net(x, Pass(masks=masks, record=record)))
        e = h_out - target
        self.net(modulated_input(x, self.modulation_signal(e), self.F, self.sign),
                 Pass(masks=masks, record=record_err))
        return record, record_err, e, h_out

    def compute_grads(self, x, target, masks):
        with torch.no_grad():
            record, record_err, e, h_out = self.passes(x, target, masks)
            layers = self.net.layers
            for layer, (_, h), (pre_err, h_err) in zip(layers[:-1], record[:-1], record_err[:-1]):
                if isinstance(layer, Conv):
                    dW, db = conv_pepita_update(pre_err, h - h_err, layer)
                else:
                    dW, db = batch_outer(h - h_err, pre_err)
                layer.weight.grad = dW
                if layer.bias is not None:
                    layer.bias.grad = db
            dW, db = batch_outer(e, record_err[-1][0])
            layers[-1].weight.grad = dW
            if layers[-1].bias is not None:
                layers[-1].bias.grad = db
            return self.net.loss_from_output(h_out, target)


class ConvPepitaF0(ConvPepita):
    """F = 0 (D&K Appendix D eq. 10)."""

    @staticmethod
    def initial_F(F):
        return torch.zeros_like(F)


class ConvPepitaRandom(ConvPepita):
    """Input ``x + s F (k r)``, ``r ~ U[0,1)`` (D&K Appendix D eq. 11)."""

    def modulation_signal(self, e):
        return self.cfg.pepita.random_perturbation_k * torch.rand_like(e)


FORMS = {
    "pepita": Forms(Pepita, ConvPepita),
    "pepita-f0": Forms(PepitaF0, ConvPepitaF0),
    "pepita-random": Forms(PepitaRandom, ConvPepitaRandom),
    "pepita-hebbian": Forms(PepitaHebbian),
    "pepita-time-local": Forms(PepitaTimeLocal),
    "pepita-afa": Forms(PepitaAFA),
    "pepita-wm": Forms(PepitaWeightMirror),
}
