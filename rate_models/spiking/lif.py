"""Fully connected networks of leaky integrate-and-fire neurons, simulated step by step.

A sample is presented for ``T = num_steps`` steps of length ``dt`` (seconds; used only to report
rates in Hz). Potentials are dimensionless (in the units of the threshold). Hidden layers
l = 1..L-1 are snnTorch ``Leaky`` neurons with reset by subtraction (snnTorch's update):

    U_l[t] = beta U_l[t-1] + W_l s_{l-1}[t] - theta S_l[t-1],      S_l[t] = H(U_l[t] - theta)

with ``beta = exp(-dt / tau_mem)`` the decay per step and ``theta`` the threshold. The output layer
is a ``Leaky`` neuron without reset, the readout: ``U_L[t] = beta U_L[t-1] + W_L s_{L-1}[t]`` and
the logits are its mean potential over the window, ``a_L = (1/T) sum_t U_L[t]``, read through a
softmax (cross-entropy) or, as in the Brian2 circuits, a sigmoid (binary cross-entropy).

Every layer's spikes also drive a presynaptic trace with the membrane's decay,

    xbar_l[t] = beta xbar_l[t-1] + s_l[t],

so ``U_L[t] = W_L xbar_{L-1}[t]`` exactly and, ignoring the reset, ``dU_l[t]/dW_l = xbar_{l-1}[t]``:
the eligibility trace of SuperSpike (Zenke & Ganguli 2018) and e-prop (Bellec et al. 2020).
Memory does not depend on T: a step keeps only the current potentials, spikes and traces.

Encoders (the input layer's ``s_0[t]`` from intensities ``x`` in [0, 1]):

* ``rate``: ``s_0[t] = 1[u_t < x]``, ``u_t ~ U[0, 1)``: one Bernoulli spike per step with
  probability ``x``, as snnTorch's ``spikegen.rate``. The uniforms come from the seed's own
  generator (``StepNoise``; ``spikegen.rate`` draws from torch's global one) so runs are
  reproducible, resumable and batched over seeds, and PEPITA's two presentations can share them.
* ``latency``: snnTorch's ``spikegen.latency`` (one spike per input, earlier for brighter
  pixels, linear in intensity over the window; ``clip``: inputs below 0.01 do not spike).
* ``current``: ``s_0[t] = x``, the intensity injected as a constant current (deterministic).

Every encoder shows an intensity ``x`` as ``b + (1 - b) x`` (``input_baseline`` b; 0.1 for PEPITA
by default): PEPITA's modulated input ``x + F e`` is a spike probability, so on dark pixels
(``x = 0``) only positive modulations would pass the clip at 0. That rectified half adds input
spikes in every modulated presentation, so ``r - r_err < 0`` on average and the update raises
every weight: on MNIST without a baseline, hidden rates rose from 167 to 220 Hz over three epochs
while the accuracy fell from 91.3% to 88.4%.

Dropout masks multiply hidden spikes, the same mask at every step of a batch.

Learning rates (issue 14): the readout's input, the mean trace ``mean_t xbar_{L-1}[t]``, is
``G = (1/T) sum_{t=1..T} (1 - beta^t)/(1 - beta)`` times the hidden rate (9.0 at beta 0.95, T 25;
measured 8.8), so the logits respond to a readout step about ``G^2`` times as strongly as a rate
network's. At the rate networks' lr 0.1 (SGD, momentum 0.9) every LIF rule, BPTT included, fell
below its frozen-hidden control on digits (1024 hidden, 3 epochs: DFA 83.1% vs 91.7%, BPTT 84.7%
vs 92.5%, sDFA 80.8% vs 91.7%): the first steps drove the logits to a spread of ~10^3 (softmax top
probability 0.9999, cross-entropy ~300-2000 in epoch 1). The LIF defaults are therefore ~10-200x
smaller than the rate ones (``neurosim.rules`` ``lif_lr``).

Convolutional networks (``arch`` ``pepita-conv``, ``drtp-conv-mnist``, ``drtp-conv-cifar10``: the
rate backend's layouts, ``rate_models.architectures.PLAIN_CONV_SPECS``) feed each LIF layer the
2×2 max pool of its convolution, ``I_l[t] = maxpool(W_l * s_{l-1}[t])`` (snnTorch's convolutional
layout; for rates it equals the rate nets' pool after ReLU, since max pooling commutes with a
monotone nonlinearity), and flatten before the first linear layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

import snntorch as snn
import torch
import torch.nn.functional as F
from snntorch import spikegen, surrogate
from torch import nn

from neurosim.feedback import forward_weights, init_matrix, stream
from rate_models.architectures import PLAIN_CONV_SPECS, conv_output_size, image_shape
from rate_models.network import StepNoise, linear
from rate_models.spiking.updates import rate_slope



@dataclass(frozen=True)
class LayerSpec:
    """How layer l's input current is made from the spikes below: ``linear`` or ``conv``
    (a convolution with ``stride``/``padding``, then 2×2 max pooling)."""

    kind: str = "linear"
    stride: int = 1
    padding: int = 0


@dataclass
class Step:
    """The state after step ``t`` that a local rule reads (layer lists start at the input)."""

    t: int
    spikes: list[torch.Tensor]  # s_0 .. s_{L-1}: input and hidden spikes (after dropout)
    traces: list[torch.Tensor]  # xbar_0 .. xbar_{L-1}
    mems: list[torch.Tensor]  # U_1 .. U_L: hidden potentials and the readout potential
    pool: list[torch.Tensor | None]  # per layer: the max-pool positions of a conv layer's current


@dataclass
class Presentation:
    """What a whole presentation leaves: readout logits, spike rates and window means."""

    logits: torch.Tensor  # a_L = mean_t U_L[t]
    rates: list[torch.Tensor]  # spike count / T of layers 0 .. L-1 (spikes per step)
    readout_input: torch.Tensor | None  # mean_t xbar_{L-1}[t]: a_L = W_L readout_input
    mean_traces: list[torch.Tensor] | None = None  # mean_t xbar_l[t] of layers 0 .. L-1
    mean_slopes: list[torch.Tensor] | None = None  # mean_t phi'(U_l[t]) of hidden layers (slope_map)


class LIFNetwork(nn.Module):
    """Weights ``W_l`` ``(N_l, N_{l-1})`` initialised as the rate networks' (``neurosim.feedback``),
    snnTorch ``Leaky`` neurons with a fast-sigmoid surrogate of slope ``surrogate_slope``
    (used by BPTT; the local rules read it scaled to the rate's slope, ``updates.rate_slope``).

    The neurons hold no trainable state, so they are kept out of the module tree: checkpoints and
    seed batches hold the weights only.
    """

    def __init__(self, sizes: list[int], cfg, seed: int = 0):
        super().__init__()
        self.seed = seed
        self.num_steps, self.beta, self.threshold = cfg.lif.num_steps, cfg.lif.beta, cfg.lif.threshold
        self.slope, self.encoder, self.dropout = cfg.lif.surrogate_slope, cfg.lif.encoder, cfg.network.dropout
        self.output, self.baseline = cfg.network.output, cfg.baseline()
        if cfg.network.arch == "fc":
            self.shapes = [(n,) for n in sizes]  # per-sample shape of each layer's activity
            self.specs = [LayerSpec()] * (len(sizes) - 1)
            weights = forward_weights(sizes, cfg.network.init, seed)
        else:
            weights = self._conv_layers(cfg, sizes[0], sizes[-1], seed)
        if len(self.shapes) < 3:
            raise ValueError(f"a LIF network needs at least one hidden layer, got {self.shapes} (--arch)")
        self.sizes = [math.prod(s) for s in self.shapes]  # flat sizes, as the feedback matrices see them
        self.weights = nn.ParameterList([nn.Parameter(torch.from_numpy(w)) for w in weights])
        self.biases = None  # LIF networks have no biases (RunConfig.validate says so)
        spike_grad = surrogate.fast_sigmoid(slope=cfg.lif.surrogate_slope)
        hidden = [snn.Leaky(beta=cfg.lif.beta, threshold=cfg.lif.threshold, spike_grad=spike_grad,
                            reset_mechanism="subtract") for _ in sizes[1:-1]]
        readout = snn.Leaky(beta=cfg.lif.beta, threshold=cfg.lif.threshold, spike_grad=spike_grad,
                            reset_mechanism="none")
        self.neurons = (*hidden, readout)  # a tuple: not registered as submodules
        self.noise = StepNoise([seed])
        self.eval_noise = StepNoise([seed])

    def _conv_layers(self, cfg, input_dim: int, n_out: int, seed: int) -> list[np.ndarray]:
        """Shapes, layer specs and initial weights of the plain conv net ``cfg.network.arch``: kernels
        ``(C_out, C_in, k, k)`` and matrices drawn by ``init_matrix`` with fan-in ``C_in k k``."""
        if cfg.network.arch not in PLAIN_CONV_SPECS:
            raise ValueError(f"--neuron lif builds fc or {', '.join(PLAIN_CONV_SPECS)}, not {cfg.network.arch!r}")
        convs, hidden = PLAIN_CONV_SPECS[cfg.network.arch]
        c, h, w = image_shape(cfg.data.dataset, input_dim)
        self.shapes, self.specs, weights = [(c, h, w)], [], []
        for i, (c_out, k, stride, padding) in enumerate(convs, start=1):
            kernel = init_matrix((c_out, c * k * k), cfg.network.init, stream(seed, f"lif-conv{i}"))
            weights.append(kernel.reshape(c_out, c, k, k))
            h = conv_output_size(h, k, stride, padding, cfg.network.arch) // 2
            w = conv_output_size(w, k, stride, padding, cfg.network.arch) // 2
            c = c_out
            self.shapes.append((c, h, w))
            self.specs.append(LayerSpec("conv", stride, padding))
        flat = [c * h * w, *hidden, n_out]
        for i in range(len(flat) - 1):
            weights.append(init_matrix((flat[i + 1], flat[i]), cfg.network.init, stream(seed, f"lif-fc{i + 1}")))
            self.shapes.append((flat[i + 1],))
            self.specs.append(LayerSpec())
        return weights

    @property
    def n_layers(self) -> int:
        return len(self.weights)

    def drive(self, l: int, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Layer ``l``'s input current from the spikes ``s`` below (and a conv layer's pool positions)."""
        spec = self.specs[l]
        if spec.kind == "conv":
            current = F.conv2d(s, self.weights[l], stride=spec.stride, padding=spec.padding)
            return F.max_pool2d(current, 2, return_indices=True)
        return linear(s.flatten(1) if s.dim() == 4 else s, self.weights[l], None), None

    def slope_map(self, l: int, mem: torch.Tensor, pool: torch.Tensor | None) -> torch.Tensor:
        """Layer ``l``'s spiking estimate of the rate slope ``phi'(U_l[t])`` (``updates.rate_slope``)
        at one step; for a conv layer laid back onto the convolution's output grid at the step's
        pool maxima (zero elsewhere: only the maximum of a pool window drives the neuron)."""
        slope = rate_slope(mem, self.threshold, self.slope)
        spec = self.specs[l]
        if spec.kind != "conv":
            return slope
        k = self.weights[l].shape[-1]
        size = [(n + 2 * spec.padding - k) // spec.stride + 1 for n in self.shapes[l][-2:]]
        return F.max_unpool2d(slope, pool, 2, output_size=size)

    def window_update(self, l: int, signal: torch.Tensor, mean_slope: torch.Tensor,
                      mean_pre: torch.Tensor) -> torch.Tensor:
        """``dW_l = [signal ⊙ mean_t phi'_l]^T mean_t xbar_{l-1}`` summed over the batch, for a
        postsynaptic signal (N, D_l) (e.g. ``m B_l^T``) constant over the window; for a conv layer
        the signal of each pool window reaches the positions of its maxima (``mean_slope`` from
        :meth:`slope_map`) and ``dW_l`` is the kernel-shaped outer product
        (``torch.nn.grad.conv2d_weight``)."""
        spec = self.specs[l]
        if spec.kind != "conv":
            return (signal * mean_slope).mT @ (mean_pre.flatten(1) if mean_pre.dim() == 4 else mean_pre)
        c, h, w = self.shapes[l + 1]
        grid = signal.reshape(-1, c, h, w).repeat_interleave(2, -1).repeat_interleave(2, -2)
        grid = F.pad(grid, (0, mean_slope.shape[-1] - 2 * w, 0, mean_slope.shape[-2] - 2 * h))
        return torch.nn.grad.conv2d_weight(mean_pre, self.weights[l].shape, grid * mean_slope,
                                           spec.stride, spec.padding)

    def bias(self, l: int) -> None:
        return None

    def undecayed_parameters(self) -> list:
        """None: no biases, no batch norm."""
        return []

    # -- encoding -----------------------------------------------------------------------------
    def encoding(self, x: torch.Tensor) -> Callable[[int], torch.Tensor]:
        """``t -> s_0[t]`` for intensities ``x`` shown as ``b + (1 - b) x`` (clipped to [0, 1] for
        the spike encoders)."""
        if self.baseline:
            x = self.baseline + (1.0 - self.baseline) * x
        if self.encoder == "current":
            return lambda t: x
        p = x.clamp(0.0, 1.0)
        if self.encoder == "latency":
            spikes = spikegen.latency(p, num_steps=self.num_steps, normalize=True, linear=True,
                                      clip=True).to(x.dtype)
            return lambda t: spikes[t]
        noise = self.noise if self.training else self.eval_noise
        shape = tuple(x.shape[-2:]) if len(self.shapes[0]) == 1 else tuple(x.shape)
        return lambda t: (noise.rand(shape, x.dtype, x.device) < p).to(x.dtype)

    def reset_evaluation_noise(self) -> None:
        """Restart the evaluation encoder's generator, so every evaluation sees the same spikes."""
        self.eval_noise = StepNoise([self.seed], self.weights[0].device)

    def dropout_masks(self, batch: int, device) -> list[torch.Tensor | None]:
        """Inverted-dropout masks for the hidden spikes (Bernoulli(1-p)/(1-p)); None without."""
        if not self.training or self.dropout == 0.0:
            return [None] * (self.n_layers - 1)
        keep = 1.0 - self.dropout
        dtype = self.weights[0].dtype
        return [self.noise.bernoulli(keep, (batch, *shape), dtype, device) / keep for shape in self.shapes[1:-1]]

    # -- simulation ---------------------------------------------------------------------------
    def simulate(self, x: torch.Tensor, masks=None, on_step: Callable[[Step], None] | None = None,
                 traces: bool = True, modulation: torch.Tensor | None = None,
                 slopes: bool = False) -> Presentation:
        """Present ``x`` (rows are samples) for T steps; call ``on_step`` after every step.

        ``modulation`` (the shape of ``x``) is added to the input layer's activity at every step,
        ``s_0[t] + modulation``: a graded input beside the input spikes (PEPITA's ``F e``).
        Under autograd (BPTT) gradients flow through the surrogate spikes; ``traces=False`` skips
        the traces and rates that only the local rules read; ``slopes=True`` also averages
        the hidden layers' rate slopes over the window (``slope_map``; the three-factor rules and
        PFA read them).
        """
        masks = masks or [None] * (self.n_layers - 1)
        dtype, L, T = self.weights[0].dtype, self.n_layers, self.num_steps
        if len(self.shapes[0]) == 3:  # images for a conv net
            x = x.reshape(-1, *self.shapes[0])
        encode = self.encoding(x)
        if modulation is not None:
            spikes_of, modulation = encode, modulation.reshape(x.shape)
            encode = lambda t: spikes_of(t) + modulation
        pool = [None] * L
        mems = [None] * L
        trace = [None] * L
        counts = [0.0] * L
        trace_sum = [0.0] * L
        slope_sum = [0.0] * (L - 1)
        logit_sum = 0.0
        for t in range(T):
            s = encode(t)
            spikes = [s]
            for l in range(L - 1):
                current, pool[l] = self.drive(l, s)
                if mems[l] is None:
                    mems[l] = torch.zeros_like(current)
                s, mems[l] = self.neurons[l](current, mems[l])
                s = s.to(dtype) if masks[l] is None else s.to(dtype) * masks[l]
                spikes.append(s)
            current, _ = self.drive(L - 1, s)
            if mems[-1] is None:
                mems[-1] = torch.zeros_like(current)
            _, mems[-1] = self.neurons[-1](current, mems[-1])
            logit_sum = logit_sum + mems[-1]
            if traces:
                for l, sp in enumerate(spikes):
                    trace[l] = sp if trace[l] is None else self.beta * trace[l] + sp
                    counts[l] = counts[l] + sp
                    trace_sum[l] = trace_sum[l] + trace[l]
            if slopes:
                for l in range(L - 1):
                    slope_sum[l] = slope_sum[l] + self.slope_map(l, mems[l], pool[l])
            if on_step is not None:
                on_step(Step(t, spikes, list(trace), list(mems), list(pool)))
        if not traces:
            return Presentation(logit_sum / T, [], None)
        mean_traces = [m / T for m in trace_sum]
        return Presentation(logit_sum / T, [c / T for c in counts], mean_traces[-1], mean_traces,
                            [m / T for m in slope_sum] if slopes else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Readout logits ``a_L`` of one presentation (no dropout in eval mode)."""
        return self.simulate(x, self.dropout_masks(x.shape[-2], x.device), traces=False).logits

    def loss_from_logits(self, a_out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the softmax of the readout logits, or binary cross-entropy of their
        sigmoid (``output="sigmoid"``, as the Brian2 circuits); one J per seed of a seed batch."""
        if self.output == "sigmoid":
            return F.binary_cross_entropy_with_logits(a_out, target.expand_as(a_out),
                                                      reduction="none").sum(-1).mean(-1)
        return -(target * torch.log_softmax(a_out, dim=-1)).sum(-1).mean(-1)

    def error(self, a_out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``e = softmax(a_L) - y*`` (or ``sigmoid(a_L) - y*``) per sample: ``N dJ/da_L``."""
        p = torch.sigmoid(a_out) if self.output == "sigmoid" else F.softmax(a_out, dim=-1)
        return p - target


@torch.no_grad()
def spike_statistics(net: LIFNetwork, x: torch.Tensor, dt: float) -> dict[str, float]:
    """Mean firing rate (Hz) of each hidden layer and the fraction of its neurons silent on every
    sample of ``x`` (one presentation, no dropout, evaluation encoder)."""
    was_training = net.training
    net.eval()
    net.reset_evaluation_noise()
    p = net.simulate(x)
    net.train(was_training)
    out = {}
    for l, r in enumerate(p.rates[1:], start=1):
        out[f"rate_l{l}_hz"] = float(r.mean()) / dt
        out[f"silent_fraction_l{l}"] = float((r.flatten(1).sum(0) == 0).float().mean())
    return out
