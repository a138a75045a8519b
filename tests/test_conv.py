"""Convolutional rules and architectures (``rate_models/rules``, ``rate_models/architectures.py``).

Oracles are written independently of the code under test: PEPITA's conv update as the literal
four steps of D&K Sec. 3.3 (a loop over samples and output positions); the error-routing autograd
functions against ``torch.autograd.gradcheck`` (with the feedback equal to the forward weights,
where the rule is backprop) and against autograd of a plain convolution with the feedback kernel
(otherwise); identity cases at the network level (FA / KP with B = W and PFA with R B = W are BP).
Everything runs in float64 on tiny tensors, except the one-step smoke tests of every rule on every
architecture.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from neurosim.config import ARCHS, RunConfig
from rate_models.architectures import ARCHITECTURES, image_shape
from rate_models.rules import CONV_RULES
from rate_models.rules import build_model as build_conv_model
from rate_models.rules.direct import DirectFeedback
from rate_models.rules.feedback import FeedbackConv2d
from rate_models.rules.gradient import bp_hidden_updates
from rate_models.rules.pfa import ProductFeedbackConv2d

PLAIN = ("pepita-conv", "drtp-conv-mnist", "drtp-conv-cifar10")
PEPITAS = ("pepita", "pepita-f0", "pepita-random")
FEEDBACK_RULES = [r for r in CONV_RULES if r not in PEPITAS]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def cfg_for(rule: str, arch: str, dataset: str = "digits", **kw) -> RunConfig:
    values = dict(rule=rule, arch=arch, dataset=dataset, dropout=0.0, pfa_expansion=2.0)
    values.update(kw)
    cfg = RunConfig(**values)
    cfg.validate()
    return cfg


def model(rule, arch, dataset="digits", n_out=10, seed=0, double=True, **kw):
    cfg = cfg_for(rule, arch, dataset, **kw)
    shape = image_shape(dataset, {"digits": 64, "cifar10": 3072}[dataset])
    net, r = build_conv_model(cfg, int(np.prod(shape)), n_out, seed)
    if double:
        r.double()
    return net, r


def batch(n=5, dim=64, n_out=10, seed=1, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, dim, generator=g, dtype=dtype)
    labels = torch.randint(0, n_out, (n,), generator=g)
    return x, F.one_hot(labels, n_out).to(dtype)


def rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# -- autograd functions -------------------------------------------------------------------------
@pytest.mark.parametrize("stride,padding", [(1, 0), (2, 1)])
def test_feedback_conv_with_B_equal_W_is_backprop(stride, padding):
    x = rand(2, 3, 7, 7, seed=1).requires_grad_()
    W = rand(4, 3, 3, 3, seed=2).requires_grad_()
    b = rand(4, seed=3).requires_grad_()
    fn = lambda x, W, b: FeedbackConv2d.apply(x, W, b, W.detach(), stride, padding)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, W, b))


def test_feedback_conv_routes_the_error_through_B_and_gives_KP_dB_equal_dW():
    x = rand(2, 3, 6, 6, seed=1).requires_grad_()
    W = rand(4, 3, 3, 3, seed=2).requires_grad_()
    B = rand(4, 3, 3, 3, seed=4).requires_grad_()
    g = rand(2, 4, 3, 3, seed=5)
    (FeedbackConv2d.apply(x, W, None, B, 2, 1) * g).sum().backward()
    x_ref = x.detach().clone().requires_grad_()
    (F.conv2d(x_ref, B.detach(), None, 2, 1) * g).sum().backward()  # transposed conv with B
    W_ref = W.detach().clone().requires_grad_()
    (F.conv2d(x.detach(), W_ref, None, 2, 1) * g).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(W.grad, W_ref.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(B.grad, W_ref.grad, rtol=1e-12, atol=1e-12)


def test_product_feedback_conv_eqs_11_12():
    x = rand(2, 3, 6, 6, seed=1).requires_grad_()
    W = rand(4, 3, 3, 3, seed=2).requires_grad_()
    R = rand(9, 3, 3, 3, seed=3).requires_grad_()
    B = rand(9, 4, 1, 1, seed=4)
    g = rand(2, 4, 6, 6, seed=5)
    (ProductFeedbackConv2d.apply(x, W, None, R, B, 1, 1) * g).sum().backward()
    # eq. 11 written as a loop over intermediate channels k: ebar^k = sum_i B^{k,i} e^i
    ebar = torch.stack([sum(B[k, i, 0, 0] * g[:, i] for i in range(4)) for k in range(9)], dim=1)
    x_ref = x.detach().clone().requires_grad_()
    R_ref = R.detach().clone().requires_grad_()
    (F.conv2d(x_ref, R_ref, None, 1, 1) * ebar).sum().backward()  # eq. 12 and dR = x * ebar
    W_ref = W.detach().clone().requires_grad_()
    (F.conv2d(x.detach(), W_ref, None, 1, 1) * g).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(R.grad, R_ref.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(W.grad, W_ref.grad, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("padding", [0, 1])
def test_product_feedback_conv_backward_equals_the_literal_eqs_11_12(stride, padding):
    # the reassociated backward against eqs. 11-12 evaluated literally with the Nbar-channel ebar
    x = rand(3, 3, 7, 7, seed=1).requires_grad_()
    W = rand(4, 3, 3, 3, seed=2).requires_grad_()
    b = rand(4, seed=6).requires_grad_()
    R = rand(10, 3, 3, 3, seed=3).requires_grad_()
    B = rand(10, 4, 1, 1, seed=4)
    y = ProductFeedbackConv2d.apply(x, W, b, R, B, stride, padding)
    g = rand(*y.shape, seed=5)
    (y * g).sum().backward()
    ebar = F.conv2d(g, B)  # eq. 11
    dx = torch.nn.grad.conv2d_input(x.shape, R.detach(), ebar, stride, padding)  # eq. 12
    dR = torch.nn.grad.conv2d_weight(x.detach(), R.shape, ebar, stride, padding)
    dW = torch.nn.grad.conv2d_weight(x.detach(), W.shape, g, stride, padding)
    for got, want in [(x.grad, dx), (R.grad, dR), (W.grad, dW), (b.grad, g.sum((0, 2, 3)))]:
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def test_product_feedback_conv_with_identity_B_and_R_equal_W_is_backprop():
    x = rand(2, 3, 5, 5, seed=1).requires_grad_()
    W = rand(4, 3, 3, 3, seed=2).requires_grad_()
    b = rand(4, seed=3).requires_grad_()
    B = torch.eye(4, dtype=torch.float64)[:, :, None, None]
    fn = lambda x, W, b: ProductFeedbackConv2d.apply(x, W, b, W.detach(), B, 2, 1)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, W, b))


@pytest.mark.parametrize("signal", ["error", "error_sign", "target"])
def test_direct_injection_gives_B_times_signal_at_each_tap(signal):
    n, n_out = 3, 4
    taps = [rand(n, 2, 3, 3, seed=1).requires_grad_(), rand(n, 5, seed=2).requires_grad_()]
    Bs = [rand(18, n_out, seed=3), rand(5, n_out, seed=4)]
    a = rand(n, n_out, seed=5).requires_grad_()
    target = torch.eye(n_out, dtype=torch.float64)[:n]
    g = rand(n, n_out, seed=6)
    (DirectFeedback.apply(a, signal, target, 2, *Bs, *taps) * g).sum().backward()
    s = {"error": g, "error_sign": torch.sign(g) / n, "target": -target / n}[signal]
    for h, B in zip(taps, Bs):
        expected = torch.stack([B @ s[i] for i in range(n)]).reshape(h.shape)  # B_l s per sample
        torch.testing.assert_close(h.grad, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(a.grad, g)


@pytest.mark.parametrize("rule,arch", [("dfa", "resnet20"), ("drtp", "drtp-conv-mnist")])
def test_direct_rules_inject_B_e_or_B_target_into_the_network(rule, arch):
    net, r = model(rule, arch)
    x, target = batch()
    a_out, taps = r.forward_with_taps(x, target, net.dropout_masks(len(x), "cpu"))
    for h in taps:
        h.retain_grad()
    net.loss_from_logits(a_out, target).sum().backward()
    e = (torch.softmax(a_out.detach(), 1) - target) / len(x)  # dJ/da_L
    s = e if rule == "dfa" else -target / len(x)
    assert len(taps) == len(r.feedbacks()) == len(net.hidden_shapes())
    for h, B in zip(taps, r.feedbacks()):
        torch.testing.assert_close(h.grad, (s @ B.t()).reshape(h.shape), rtol=1e-10, atol=1e-14)


# -- PEPITA: the paper's four steps, literally ----------------------------------------------------
def pepita_conv_reference(x, target, W1, b1, W2, b2, F_proj, sign, stride=1, padding=0):
    """D&K Sec. 3.3 on the pepita-conv net (conv, ReLU, 2×2 max pool, softmax output):
    standard pass, modulated pass on x + s F e, then per filter: for every output element the
    activity difference times the input patch of the modulated pass (step 1), summed (step 2),
    divided by the number of products (step 3). Output layer: e (h_1^err)^T, batch mean (eq. 5)."""
    n = len(x)

    def forward(inp):
        h1 = torch.relu(F.conv2d(inp, W1, b1, stride, padding))
        p1 = F.max_pool2d(h1, 2).flatten(1)
        return h1, p1, torch.softmax(p1 @ W2.t() + b2, dim=1)

    img = x.reshape(n, 1, 8, 8)
    h1, _, out = forward(img)
    e = out - target
    x_err = img + sign * (e @ F_proj.t()).reshape(img.shape)
    h1_err, p1_err, _ = forward(x_err)
    padded = F.pad(x_err, (padding,) * 4)
    k = W1.shape[-1]
    dW1, db1, count = torch.zeros_like(W1), torch.zeros_like(b1), 0
    for s in range(n):
        for i in range(h1.shape[2]):
            for j in range(h1.shape[3]):
                patch = padded[s, :, i * stride:i * stride + k, j * stride:j * stride + k]
                diff = h1[s, :, i, j] - h1_err[s, :, i, j]
                for c in range(W1.shape[0]):
                    dW1[c] += diff[c] * patch
                    db1[c] += diff[c]
                count += 1
    dW2 = sum(torch.outer(e[s], p1_err[s]) for s in range(n)) / n
    return dW1 / count, db1 / count, dW2, e.mean(0)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_pepita_conv_update_equals_the_four_step_description(sign):
    net, r = model("pepita", "pepita-conv", bias=True, modulation_sign=sign, f_scale=0.5)
    with torch.no_grad():
        for p in net.undecayed_parameters():
            p.copy_(rand(*p.shape, seed=7) * 0.1)
    x, target = batch()
    r.compute_grads(x, target, net.dropout_masks(len(x), "cpu"))
    conv, fc = net.layers
    ref = pepita_conv_reference(x, target, conv.weight.detach(), conv.bias.detach(), fc.weight.detach(),
                                fc.bias.detach(), r.F, sign)
    for got, want in zip((conv.weight.grad, conv.bias.grad, fc.weight.grad, fc.bias.grad), ref):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-13)
    assert conv.weight.grad.abs().max() > 0


def test_pepita_f0_leaves_conv_layers_unchanged():
    net, r = model("pepita-f0", "drtp-conv-mnist")
    x, target = batch()
    r.compute_grads(x, target, net.dropout_masks(len(x), "cpu"))
    for W in net.weights[:-1]:
        assert float(W.grad.abs().max()) == 0.0
    assert float(net.weights[-1].grad.abs().max()) > 0.0


# -- identity cases at the network level ----------------------------------------------------------
def set_feedback_to_forward(net, rule):
    """FA/KP: B = W (conv) or W^T (linear). PFA: B = I, R = W (conv) or W^T (linear)."""
    with torch.no_grad():
        for layer in net.layers[1:]:
            conv = layer.weight.dim() == 4
            if rule == "pfa":
                n_out = layer.weight.shape[0]
                eye = torch.eye(n_out, dtype=torch.float64)
                layer.B = eye[:, :, None, None] if conv else eye
                layer.R = torch.nn.Parameter(layer.weight.detach().clone() if conv else layer.weight.detach().t().clone())
            else:
                layer.B.copy_(layer.weight if conv else layer.weight.t())


@pytest.mark.parametrize("rule", ["fa", "kolen-pollack", "pfa"])
@pytest.mark.parametrize("arch", ["resnet20", "drtp-conv-mnist"])
def test_feedback_equal_to_forward_weights_is_backprop(rule, arch):
    net, r = model(rule, arch, pfa_expansion=1.0)
    set_feedback_to_forward(net, rule)
    x, target = batch()
    got = r.hidden_updates(x, target)
    want = bp_hidden_updates(net, x, target)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-9, atol=1e-12)


def test_sign_symmetry_uses_scaled_sign_of_W():
    net, r = model("sign-symmetry", "pepita-conv")
    layer = net.layers[1]
    W = layer.weight.detach()
    torch.testing.assert_close(layer.feedback(), torch.sign(W.t()) * W.abs().mean())


# -- every rule on every architecture -------------------------------------------------------------
COMBOS = [(rule, arch) for arch in ARCHITECTURES for rule in CONV_RULES
          if not (rule in PEPITAS and arch not in PLAIN)]


@pytest.mark.parametrize("rule,arch", COMBOS)
def test_one_step_on_cifar_shaped_data_changes_the_weights(rule, arch):
    net, r = model(rule, arch, dataset="cifar10", double=False, pfa_expansion=1.0, dropout=0.1)
    opt = torch.optim.SGD(list(net.parameters()) + r.feedback_parameters(), lr=0.1)
    before = [W.detach().clone() for W in net.weights]
    x, target = batch(n=2, dim=3072, dtype=torch.float32)
    loss = r.train_step(x, target, opt)
    assert torch.isfinite(loss).all()
    changed = [not torch.equal(b, W) for b, W in zip(before, net.weights)]
    assert changed[-1]
    assert all(changed) or rule == "pepita-f0"


def test_architecture_names_match_the_config():
    assert set(ARCHS) == {"fc", *ARCHITECTURES}


def test_resnet20_has_the_papers_size():
    net, _ = model("bp", "resnet20", dataset="cifar10", double=False)
    n_params = sum(p.numel() for p in net.weights) + sum(p.numel() for p in net.undecayed_parameters())
    assert net.n_layers == 20 and 0.26e6 < n_params < 0.28e6  # He et al. 2016 Table 6: 0.27M


def test_alignment_figures_are_angles():
    _, r = model("pfa", "resnet20")
    figs = r.alignment()
    assert figs and all(0 <= v <= 180 for k, v in figs.items() if k.endswith("_deg"))


# -- errors ---------------------------------------------------------------------------------------
def test_pepita_on_a_residual_network_is_refused_clearly():
    with pytest.raises(ValueError, match=r"'pepita'.*'resnet20'.*pepita-conv"):
        model("pepita", "resnet20")


def test_rule_without_a_conv_form_is_refused_clearly():
    with pytest.raises(ValueError, match=r"'weight-mirror' has no convolutional form.*resnet20"):
        model("weight-mirror", "resnet20")


def test_flat_dataset_and_unknown_arch_are_refused():
    with pytest.raises(ValueError, match="flat samples"):
        image_shape("cosine-regression", 256)
    with pytest.raises(ValueError, match="arch must be one of"):
        RunConfig(arch="vgg").validate()


def test_cli_trains_a_conv_net(tmp_path):
    from neurosim.cli import main
    from neurosim.config import parse_arch

    assert parse_arch("resnet20") == "resnet20" and parse_arch("2x64") == [64, 64]
    code = main(["train", "--rule", "drtp", "--arch", "pepita-conv", "--dataset", "digits", "--epochs", "1",
                 "--quiet", "--out", str(tmp_path / "run"), "--lr", "0.01"])
    assert code == 0
    import json
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["arch"] == "pepita-conv" and summary["test_accuracy"] > 10.0
