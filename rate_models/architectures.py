"""The architectures, all built from a rule's layer factory: the fully connected network and the
convolutional ones.

Every architecture asks ``factory.linear`` / ``factory.conv`` (``rate_models.layers``) for its
layers and receives flat inputs, as the training data path keeps them. A rule's dense form runs on
``fc`` (:class:`FCNetwork`; the factory gives it plain layers and the rule routes the error through
the hooks of :meth:`FCNetwork.run`), its convolutional form on the others, which view the inputs as
``(C, H, W)`` and thread a :class:`~rate_models.layers.Pass` through their forward: it lets a rule
tap hidden activities (DFA, sDFA, DRTP), record every layer's input and activity (PEPITA) or
compute plain backprop (figures). The interface is ``FCNetwork``'s: ``weights`` (weights and
kernels in forward order, the output layer last), ``layers``, ``n_layers``, ``dropout_masks``,
``phi``, ``loss_from_logits``, ``loss_from_output``; ``forward`` returns the output pre-activation.

``RunConfig.network.arch`` names (:data:`ARCHITECTURES`):

* ``fc`` — fully connected, hidden sizes ``cfg.network.hidden``.
* ``pepita-conv`` — PEPITA paper Appendix A, Table 2 "convolutional models": conv 32 maps 5×5
  stride 1 (padding not given: none), max pooling 2×2 (Sec. 4.1), linear output.
* ``drtp-conv-mnist`` — DRTP paper Table 1 / Sec. 4: conv 32 5×5 stride 1 padding 2, max pool 2×2
  stride 2, linear 1000, linear output.
* ``drtp-conv-cifar10`` — DRTP paper Table 2 / Sec. 4: conv 64 and conv 256, 3×3 stride 1
  padding 1, each followed by max pool 2×2 stride 2, linear 1000, linear 1000, linear output.
* ``resnet20`` — He et al. 2016 Sec. 4.2 (PFA paper Fig. 4): conv 3×3 16, then 3 stages × 3 basic
  blocks of 16/32/64 channels (stride 2 entering stages 2-3), batch norm after every conv,
  parameter-free "option A" shortcuts (subsample, zero-pad the channels), global average pool,
  linear output (with bias).
* ``resnet18`` — He et al. 2016 Table 1 (PFA paper Fig. 5): conv 7×7/2 64, max pool 3×3/2, stages
  of 2 basic blocks with 64/128/256/512 channels, 1×1 conv + batch norm projection shortcuts
  where the shape changes ("option B"), global average pool, linear output (with bias).

The hidden nonlinearity is ``cfg.network.activation`` everywhere and the output one ``cfg.network.output``.
Dropout (``cfg.network.dropout``) applies after hidden linear layers, as in both papers' conv nets; the
ResNets have none and ignore it. Activation normalization (``cfg.network.normalize_activations``) is
defined for ``fc`` only. Conv layers of the plain nets have biases when ``cfg.network.bias``;
ResNet convolutions have none (batch norm follows).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from neurosim.feedback import forward_weights
from rate_models.layers import Conv, Layer, LayerFactory, Linear, Pass
from rate_models.network import StepNoise

# sample shapes of the image data sets (neurosim.datasets loaders), so flat inputs can be viewed
IMAGE_SHAPES = {"digits": (1, 8, 8), "mnist": (1, 28, 28), "fashion-mnist": (1, 28, 28),
                "cifar10": (3, 32, 32), "cifar100": (3, 32, 32),
                "imagenet": None}  # square crops of RunConfig.streaming.image_size: (3, S, S) with S from the input size


def image_shape(dataset: str, input_dim: int) -> tuple[int, int, int]:
    """``(C, H, W)`` of a data set's samples; ValueError for data sets without images."""
    if dataset not in IMAGE_SHAPES:
        raise ValueError(f"dataset {dataset!r} has flat samples, but convolutional architectures "
                         f"need images: use one of {', '.join(IMAGE_SHAPES)}, or --arch with hidden "
                         "sizes (fully connected)")
    shape = IMAGE_SHAPES[dataset] or (3, math.isqrt(input_dim // 3), math.isqrt(input_dim // 3))
    if math.prod(shape) != input_dim:
        raise ValueError(f"dataset {dataset!r} samples have {input_dim} values, not {shape}")
    return shape


# clipped-relu: min(max(0, a), 1), a rate neuron that saturates at its maximal rate (the
# circuits' error-driven hidden neurons); hardtanh's derivative is 1 strictly inside (0, 1)
_HIDDEN = {"relu": torch.relu, "clipped-relu": lambda a: F.hardtanh(a, 0.0, 1.0), "tanh": torch.tanh,
           "sigmoid": torch.sigmoid, "linear": lambda a: a}
_OUTPUT = {"softmax": lambda a: torch.softmax(a, dim=-1), "sigmoid": torch.sigmoid,
           "tanh": torch.tanh, "linear": lambda a: a}


class FCNetwork(nn.Module):
    """The fully connected architecture: ``x_l = phi_l(W_l x_{l-1} + b_l)``, l = 1..L (``phi`` the
    hidden nonlinearity, the output one at l = L), dropout after hidden layers as an explicit mask
    (drawn once per batch so PEPITA's two passes share it), optional activation normalization
    (Hinton 2022, used by Srinivasan et al. 2023): ``x_l <- x_l / ||x_l||_2`` for hidden layers.

    The loss pairs with the output nonlinearity so that ``dJ/da_L = (x_L - y*)/N`` for softmax with
    cross-entropy and sigmoid with binary cross-entropy (mean over the batch of the per-sample sum),
    and ``J = mean 0.5||x_L - y*||^2`` for tanh/linear outputs.

    The layers ``fc1`` ... ``fcL`` come from ``factory`` (the rule's ``layer_factory``; by default
    backprop's), given the weights ``W_l`` ``(N_l, N_{l-1})`` that ``neurosim.feedback.forward_weights``
    draws (the arrays a circuit of the same seed receives). A rule's dense form keeps its feedback in
    the rule, so these layers hold only a weight and a bias, which the network holds in ``weights``
    and ``biases`` (checkpoint keys ``net.weights.<l>``, ``net.biases.<l>``, stacked by name in a
    seed batch); a layer holding more is refused. ``noise`` draws the per-step randomness of
    ``seed`` on the CPU; a training loop on another device (or on a seed batch) replaces it with a
    ``StepNoise`` there.
    """

    def __init__(self, sizes: list[int], activation: str = "relu", output: str = "softmax",
                 dropout: float = 0.0, bias: bool = False, init: str = "he_uniform",
                 seed: int = 0, normalize: bool = False, factory: LayerFactory | None = None):
        super().__init__()
        if len(sizes) < 2:
            raise ValueError(f"a network needs an input and an output size, got {sizes}")
        self.sizes = list(sizes)
        self.activation, self.output, self.dropout, self.normalize = activation, output, dropout, normalize
        factory = factory or LayerFactory(Conv, Linear, None, seed)
        self.layers = [factory.linear(f"fc{l}", sizes[l - 1], sizes[l], bias, first=l == 1,
                                      weight=torch.from_numpy(W))
                       for l, W in enumerate(forward_weights(sizes, init, seed), start=1)]
        for layer in self.layers:
            held = [n for n, _ in [*layer.named_parameters(), *layer.named_buffers()] if n not in ("weight", "bias")]
            if held:
                raise ValueError(f"the fully connected architecture holds its layers' weights and biases "
                                 f"only; {type(layer).__name__} also holds {', '.join(held)}")
        self.weights = nn.ParameterList([layer.weight for layer in self.layers])
        self.biases = nn.ParameterList([layer.bias for layer in self.layers]) if bias else None
        self.noise = StepNoise([seed])

    @property
    def n_layers(self) -> int:
        return len(self.weights)

    def bias(self, l: int) -> torch.Tensor | None:
        """Bias of layer ``l`` (0-based), or None."""
        return None if self.biases is None else self.biases[l]

    def phi(self, l: int, a: torch.Tensor) -> torch.Tensor:
        """Nonlinearity of layer ``l`` (0-based) applied to pre-activation ``a``."""
        last = l == self.n_layers - 1
        return (_OUTPUT[self.output] if last else _HIDDEN[self.activation])(a)

    def hidden_post(self, h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """Normalization and dropout applied to a hidden layer's activity."""
        if self.normalize:
            h = h / (h.norm(dim=-1, keepdim=True) + 1e-8)
        return h if mask is None else h * mask

    def dropout_masks(self, batch: int, device) -> list[torch.Tensor | None]:
        """Inverted-dropout masks (Bernoulli(1-p)/(1-p)) for every hidden layer, drawn from
        ``self.noise`` in the weights' dtype; None without dropout."""
        if not self.training or self.dropout == 0.0:
            return [None] * (self.n_layers - 1)
        keep = 1.0 - self.dropout
        dtype = self.weights[0].dtype
        return [self.noise.bernoulli(keep, (batch, n), dtype, device) / keep for n in self.sizes[1:-1]]

    def run(self, x: torch.Tensor, masks=None, layer=None, tap=None) -> torch.Tensor:
        """Output pre-activation ``a_L`` of one forward pass, the layer loop of every rule:
        ``a_l = layer(l, x_{l-1})`` (default: layer l's ``W_l x_{l-1} + b_l``), ``x_l = hidden_post(phi_l(a_l),
        mask_l)`` for hidden layers. ``layer`` lets a rule route its error through its own autograd
        function; ``tap(x_l)``, when given, is what layer l+1 receives (the direct rules record
        ``x_l`` and hand on a detached copy)."""
        masks = masks or [None] * (self.n_layers - 1)
        h = x
        for l in range(self.n_layers):
            a = self.layers[l](h) if layer is None else layer(l, h)
            if l == self.n_layers - 1:
                return a
            h = self.hidden_post(self.phi(l, a), masks[l])
            if tap is not None:
                h = tap(h)

    def forward_all(self, x: torch.Tensor, masks=None, a1: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Activities ``[x_0, x_1, ..., x_L]`` of a plain forward pass; ``a1``, when given, is the
        first layer's pre-activation ``W_1 x + b_1`` computed by the caller."""
        hs = [x]

        def keep(h):
            hs.append(h)
            return h

        first = None if a1 is None else (
            lambda l, h: a1 if l == 0 else self.layers[l](h))
        hs.append(self.phi(self.n_layers - 1, self.run(x, masks, first, keep)))
        return hs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Output pre-activation ``a_L`` (logits) of a plain forward pass."""
        return self.run(x)

    def undecayed_parameters(self) -> list[nn.Parameter]:
        """The biases (trained without weight decay)."""
        return list(self.biases) if self.biases is not None else []

    def loss_from_logits(self, a_out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Training loss J given output pre-activations and targets (one-hot for classification):
        a scalar, or one J per seed ``(K,)`` for a seed batch's ``(K, batch, N_L)`` outputs."""
        if self.output == "softmax":
            return -(target * torch.log_softmax(a_out, dim=-1)).sum(-1).mean(-1)
        if self.output == "sigmoid":
            return F.binary_cross_entropy_with_logits(a_out, target.expand_as(a_out),
                                                      reduction="none").sum(-1).mean(-1)
        return 0.5 * ((self.phi(self.n_layers - 1, a_out) - target) ** 2).sum(-1).mean(-1)

    def loss_from_output(self, h_out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The same loss J computed from the output activity ``x_L`` (forward-only rules)."""
        if self.output == "softmax":
            return -(target * torch.log(h_out.clamp_min(1e-12))).sum(-1).mean(-1)
        if self.output == "sigmoid":
            return F.binary_cross_entropy(h_out.clamp(1e-7, 1 - 1e-7), target.expand_as(h_out),
                                          reduction="none").sum(-1).mean(-1)
        return 0.5 * ((h_out - target) ** 2).sum(-1).mean(-1)


class ConvNetwork(nn.Module):
    """Shared interface of the convolutional architectures (see the module docstring)."""

    name = ""
    plain_feedforward = False  # conv/pool/linear only: PEPITA applies

    # the FC network's nonlinearities and losses, which only read activation, output, n_layers
    phi = FCNetwork.phi
    loss_from_logits = FCNetwork.loss_from_logits
    loss_from_output = FCNetwork.loss_from_output

    def __init__(self, input_shape, n_out: int, cfg, seed: int):
        super().__init__()
        if cfg.network.normalize_activations:
            raise ValueError(f"activation normalization is defined for fully connected networks only, "
                             f"not arch {self.name!r}; drop --normalize")
        if len(input_shape) != 3:
            raise ValueError(f"{self.name} needs (C, H, W) inputs, got shape {tuple(input_shape)}")
        self.input_shape, self.n_out = tuple(int(s) for s in input_shape), int(n_out)
        self.input_dim = math.prod(self.input_shape)
        self.activation, self.output, self.dropout = cfg.network.activation, cfg.network.output, cfg.network.dropout
        # dropout masks come from the seed's own generator, replaced by one on the training device
        # (and sliced to a process's rows under torchrun) exactly as for FCNetwork
        self.noise = StepNoise([seed])
        self.hidden_linear: dict[int, int] = {}  # layer index -> width of hidden linear layers

    def collect_layers(self) -> None:
        """Index the rule layers in registration (= forward) order; call at the end of __init__."""
        self.layers = [m for m in self.modules() if isinstance(m, Layer)]

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    @property
    def weights(self) -> list[nn.Parameter]:
        return [layer.weight for layer in self.layers]

    def undecayed_parameters(self) -> list[nn.Parameter]:
        """Layer biases and batch-norm scales and shifts (trained without weight decay)."""
        params = [layer.bias for layer in self.layers if layer.bias is not None]
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                params += [m.weight, m.bias]
        return params

    def hidden_phi(self, a: torch.Tensor) -> torch.Tensor:
        return self.phi(0, a)

    def dropout_masks(self, batch: int, device) -> list[torch.Tensor | None]:
        """Inverted-dropout masks for hidden linear layers, None for every other layer."""
        masks = [None] * (self.n_layers - 1)
        if self.training and self.dropout > 0.0:
            keep = 1.0 - self.dropout
            dtype = self.layers[0].weight.dtype
            for l, n in self.hidden_linear.items():
                masks[l] = self.noise.bernoulli(keep, (batch, n), dtype, device) / keep
        return masks

    def forward(self, x: torch.Tensor, p: Pass | None = None) -> torch.Tensor:
        """Output pre-activation ``a_L`` of flat (or image) inputs."""
        return self.run(x.reshape(-1, *self.input_shape), p or Pass())

    def run(self, h: torch.Tensor, p: Pass) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def hidden_shapes(self) -> list[tuple]:
        """Per-sample shapes of the hidden activities a direct rule taps, in forward order."""
        shapes, was_training = [], self.training
        self.eval()
        x = torch.zeros(1, self.input_dim, device=self.weights[0].device, dtype=self.weights[0].dtype)
        self(x, Pass(tap=lambda h: shapes.append(tuple(h.shape[1:])) or h))
        self.train(was_training)
        return shapes


def conv_output_size(size: int, k: int, stride: int, padding: int, name: str) -> int:
    out = (size + 2 * padding - k) // stride + 1
    if out < 1:
        raise ValueError(f"input too small for {name}: a {size}-pixel map leaves nothing after a {k}×{k} "
                         f"kernel (stride {stride}, padding {padding})")
    return out


class PlainConvNet(ConvNetwork):
    """Convolutions ``(channels, kernel, stride, padding)``, each followed by the nonlinearity and
    2×2 max pooling, then hidden linear layers with dropout, then the linear output layer."""

    plain_feedforward = True

    def __init__(self, name: str, convs: list[tuple], hidden: list[int], factory: LayerFactory,
                 input_shape, n_out: int, cfg):
        self.name = name
        super().__init__(input_shape, n_out, cfg, factory.seed)
        c, h, w = self.input_shape
        self.convs = nn.ModuleList()
        for i, (c_out, k, stride, padding) in enumerate(convs):
            self.convs.append(factory.conv(f"conv{i + 1}", c, c_out, k, stride, padding, cfg.network.bias, first=i == 0))
            h = conv_output_size(h, k, stride, padding, name) // 2
            w = conv_output_size(w, k, stride, padding, name) // 2
            if h < 1 or w < 1:
                raise ValueError(f"input {self.input_shape} too small for {name}: nothing left to pool")
            c = c_out
        sizes = [c * h * w, *hidden, n_out]
        self.linears = nn.ModuleList(
            [factory.linear(f"fc{i + 1}", sizes[i], sizes[i + 1], cfg.network.bias, first=not convs and i == 0)
             for i in range(len(sizes) - 1)])
        self.n_conv = len(convs)
        self.collect_layers()
        self.hidden_linear = {self.n_conv + i: n for i, n in enumerate(hidden)}

    def run(self, h, p):
        for l, layer in enumerate(self.layers):
            if l == self.n_conv:
                h = h.flatten(1)
            a = p.layer(layer, h)
            if l == self.n_layers - 1:
                p.keep(h, None)
                return a
            act = p.mask(l, self.phi(l, a))
            p.keep(h, act)
            h = p.hidden(F.max_pool2d(act, 2) if l < self.n_conv else act)


class BasicBlock(nn.Module):
    """``out = phi(BN(W_2 * phi(BN(W_1 * x))) + shortcut(x))`` (He et al. 2016, Fig. 2)."""

    def __init__(self, factory: LayerFactory, name: str, c_in: int, c_out: int, stride: int,
                 projection: bool):
        super().__init__()
        self.conv1 = factory.conv(f"{name}.conv1", c_in, c_out, 3, stride, 1)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = factory.conv(f"{name}.conv2", c_out, c_out, 3, 1, 1)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.stride, self.pad = stride, (c_out - c_in) // 2
        self.reshape = stride != 1 or c_in != c_out
        if self.reshape and projection:
            self.short_conv = factory.conv(f"{name}.shortcut", c_in, c_out, 1, stride, 0)
            self.short_bn = nn.BatchNorm2d(c_out)
        else:
            self.short_conv = None

    def shortcut(self, x: torch.Tensor, p: Pass) -> torch.Tensor:
        if not self.reshape:
            return x
        if self.short_conv is not None:
            return self.short_bn(p.layer(self.short_conv, x))
        # option A: subsample, zero-pad the new channels on both sides
        return F.pad(x[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0, self.pad, self.pad))

    def forward(self, x: torch.Tensor, p: Pass, phi) -> torch.Tensor:
        h = p.hidden(phi(self.bn1(p.layer(self.conv1, x))))
        return p.hidden(phi(self.bn2(p.layer(self.conv2, h)) + self.shortcut(x, p)))


class ResNet(ConvNetwork):
    """Stem, stages of basic blocks ``(channels, blocks, stride)``, global average pool, linear."""

    def __init__(self, name: str, stem: tuple, stem_pool: bool, stages: list[tuple], projection: bool,
                 factory: LayerFactory, input_shape, n_out: int, cfg):
        self.name = name
        super().__init__(input_shape, n_out, cfg, factory.seed)
        c_stem, k, stride, padding = stem
        self.stem = factory.conv("stem", self.input_shape[0], c_stem, k, stride, padding, first=True)
        self.stem_bn = nn.BatchNorm2d(c_stem)
        self.stem_pool = stem_pool
        self.blocks = nn.ModuleList()
        c = c_stem
        for s, (c_out, n_blocks, first_stride) in enumerate(stages, start=1):
            for b in range(n_blocks):
                self.blocks.append(BasicBlock(factory, f"stage{s}.block{b + 1}", c, c_out,
                                              first_stride if b == 0 else 1, projection))
                c = c_out
        self.fc = factory.linear("fc", c, n_out, bias=True)
        self.collect_layers()

    def run(self, h, p):
        h = self.hidden_phi(self.stem_bn(p.layer(self.stem, h)))
        if self.stem_pool:
            h = F.max_pool2d(h, 3, 2, 1)
        h = p.hidden(h)
        for block in self.blocks:
            h = block(h, p, self.hidden_phi)
        return p.layer(self.fc, h.mean((2, 3)))


# plain conv nets: (convs (channels, kernel, stride, padding), each with 2×2 max pooling; hidden
# linear sizes); the spiking mode builds the same ones from LIF neurons (rate_models/spiking/lif.py)
PLAIN_CONV_SPECS = {
    "pepita-conv": ([(32, 5, 1, 0)], []),
    "drtp-conv-mnist": ([(32, 5, 1, 2)], [1000]),
    "drtp-conv-cifar10": ([(64, 3, 1, 1), (256, 3, 1, 1)], [1000, 1000]),
}


def _plain(name: str):
    return lambda f, input_dim, n, cfg: PlainConvNet(name, *PLAIN_CONV_SPECS[name], f,
                                                     image_shape(cfg.data.dataset, input_dim), n, cfg)


def _resnet(*spec):
    return lambda f, input_dim, n, cfg: ResNet(*spec, f, image_shape(cfg.data.dataset, input_dim), n, cfg)


ARCHITECTURES = {
    "fc": lambda f, input_dim, n, cfg: FCNetwork(
        [input_dim, *cfg.network.hidden, n], cfg.network.activation, cfg.network.output, cfg.network.dropout,
        cfg.network.bias, cfg.network.init, f.seed, cfg.network.normalize_activations, f),
    **{name: _plain(name) for name in PLAIN_CONV_SPECS},
    "resnet20": _resnet("resnet20", (16, 3, 1, 1), False, [(16, 3, 1), (32, 3, 2), (64, 3, 2)], False),
    "resnet18": _resnet("resnet18", (64, 7, 2, 3), True, [(64, 2, 1), (128, 2, 2), (256, 2, 2), (512, 2, 2)],
                        True),
}


def build_architecture(name: str, factory: LayerFactory, input_dim: int, n_out: int, cfg) -> nn.Module:
    """The architecture ``name`` with the rule's layers from ``factory``, for samples of
    ``input_dim`` values (viewed as the images of ``cfg.data.dataset`` by the convolutional ones)."""
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; choose one of: {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[name](factory, input_dim, n_out, cfg)
