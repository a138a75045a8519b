"""Correctness of every rate-backend learning rule against its paper's equation.

Every oracle below is an independent numpy computation written *per sample* from the paper's
equation (looping over the samples of the batch and averaging), never a call to the code under
test. Conventions (``rate_models/rules/base.py``): ``W_l`` is ``(N_l, N_{l-1})``; a rule leaves in
``.grad`` the batch-mean update that the optimizer subtracts (``W <- W - lr * grad``); the loss J
is the batch mean of the per-sample sum, so ``dJ/da_L = (h_L - y*)/N`` for softmax + CE and
sigmoid + BCE, i.e. the per-sample output error is ``e = h_L - y*``.

Papers (``/work/shared/papers``):
* PFA paper (Li Ji-An & Benna) eqs. 2-6: BP, FA, SF, KP, PFA.
* PEPITA paper (Dellaferrera & Kreiman 2022) Algorithm 1, eqs. 1-5, Appendix D eqs. 9-11.
* Analysis paper (Srinivasan et al. 2023) eqs. 7, 11, 13-14, Algorithm 2, Sec. 6.1.
* DRTP paper (Frenkel et al. 2021) Algorithm 1 (and Sec. 2.2 for sDFA).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurosim.config import RunConfig
from rate_models.architectures import FCNetwork
from rate_models.rules import build_rule
from rate_models.rules.direct import DirectFeedback
from rate_models.rules.feedback import FeedbackLinear
from rate_models.rules.pfa import ProductFeedbackLinear

DEEP = [7, 5, 4, 3]  # two hidden layers
SHALLOW = [7, 5, 3]  # one hidden layer
BATCH = 6
RTOL, ATOL = 1e-9, 1e-12


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: intra-op threads only cost time (badly so on a loaded machine)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# ---------------------------------------------------------------------------------------------
# numpy reference network (per sample)
# ---------------------------------------------------------------------------------------------

def np_phi(name, a):
    if name == "relu":
        return np.maximum(a, 0.0)
    if name == "tanh":
        return np.tanh(a)
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-a))
    if name == "linear":
        return a.copy()
    raise ValueError(name)


def np_dphi(name, a):
    if name == "relu":
        return (a > 0).astype(float)
    if name == "tanh":
        return 1.0 - np.tanh(a) ** 2
    if name == "sigmoid":
        s = 1.0 / (1.0 + np.exp(-a))
        return s * (1.0 - s)
    if name == "linear":
        return np.ones_like(a)
    raise ValueError(name)


def np_out(name, a):
    if name == "softmax":
        z = np.exp(a - a.max())
        return z / z.sum()
    return np_phi(name, a)


def np_forward(Ws, bs, x, act, out, masks=None):
    """One sample: pre-activations ``[a_1..a_L]`` and activities ``[h_0=x, h_1..h_L]``."""
    L = len(Ws)
    As, hs = [], [np.asarray(x, float)]
    for l in range(L):
        a = Ws[l] @ hs[-1] + (bs[l] if bs is not None else 0.0)
        As.append(a)
        if l == L - 1:
            h = np_out(out, a)
        else:
            h = np_phi(act, a)
            if masks is not None and masks[l] is not None:
                h = h * masks[l]
        hs.append(h)
    return As, hs


def np_output_error(out, a, h, y):
    """Per-sample dJ/da_L: h - y for softmax/CE and sigmoid/BCE; MSE otherwise."""
    if out in ("softmax", "sigmoid"):
        return h - y
    if out == "tanh":
        return (h - y) * (1.0 - h ** 2)
    return h - y  # linear + MSE


def np_chain(Ws, bs, X, Y, act, out, feedback):
    """Layer-wise error propagation with ``feedback[l]`` (0-based hidden index l) replacing
    ``W_{l+2}^T`` (1-based); returns batch means of dW_l = e_l h_{l-1}^T, db_l = e_l and the
    Kolen-Pollack update dB = h_l e_{l+1}^T."""
    L, n = len(Ws), len(X)
    dW = [np.zeros_like(W) for W in Ws]
    db = [np.zeros(W.shape[0]) for W in Ws]
    dB = [np.zeros((W.shape[1], W.shape[0])) for W in Ws[1:]]
    for x, y in zip(X, Y):
        As, hs = np_forward(Ws, bs, x, act, out)
        es = [None] * L
        es[-1] = np_output_error(out, As[-1], hs[-1], y)
        for l in range(L - 2, -1, -1):  # e_l = phi'(a_l) ⊙ B_{l+1} e_{l+1}
            es[l] = np_dphi(act, As[l]) * (feedback[l] @ es[l + 1])
        for l in range(L):
            dW[l] += np.outer(es[l], hs[l])
            db[l] += es[l]
        for l in range(L - 1):
            dB[l] += np.outer(hs[l + 1], es[l + 1])
    return [d / n for d in dW], [d / n for d in db], [d / n for d in dB]


def np_direct(Ws, bs, X, Y, act, out, Bs, signal):
    """DFA (B e), sDFA (B sign(e)), DRTP (-B y*) for hidden layers; delta rule at the output."""
    L, n = len(Ws), len(X)
    dW = [np.zeros_like(W) for W in Ws]
    db = [np.zeros(W.shape[0]) for W in Ws]
    for x, y in zip(X, Y):
        As, hs = np_forward(Ws, bs, x, act, out)
        e = hs[-1] - y
        for l in range(L - 1):
            if signal == "error":
                proj = Bs[l] @ e
            elif signal == "error_sign":
                proj = Bs[l] @ np.sign(e)
            else:  # DRTP: W += eta (B y* ⊙ f') x^T, i.e. grad = -(B y* ⊙ f') x^T
                proj = -(Bs[l] @ y)
            el = np_dphi(act, As[l]) * proj
            dW[l] += np.outer(el, hs[l])
            db[l] += el
        dW[-1] += np.outer(e, hs[L - 1])
        db[-1] += e
    return [d / n for d in dW], [d / n for d in db]


def np_pepita(Ws, bs, X, Y, act, out, F, s, mode="pepita", perturbation=None, masks=None):
    """PEPITA (D&K Algorithm 1 / eqs. 3-5) and PEPITA-Hebbian (S eqs. 13-14), per sample.

    ``perturbation[i]`` replaces e in the input modulation (D&K Appendix D eq. 11)."""
    L, n = len(Ws), len(X)
    dW = [np.zeros_like(W) for W in Ws]
    db = [np.zeros(W.shape[0]) for W in Ws]
    for i, (x, y) in enumerate(zip(X, Y)):
        m = None if masks is None else [mk[i] for mk in masks]
        _, hs = np_forward(Ws, bs, x, act, out, m)
        e = hs[-1] - y
        mod = e if perturbation is None else perturbation[i]
        x_err = x + s * (F @ mod)  # h_0^err = x + s F e
        _, hs_err = np_forward(Ws, bs, x_err, act, out, m)
        assert np.array_equal(hs_err[0], x_err)
        for l in range(1, L):
            if mode == "pepita":  # (h_l - h_l^err)(h_{l-1}^err)^T
                dW[l - 1] += np.outer(hs[l] - hs_err[l], hs_err[l - 1])
            else:  # hebbian: h_l h_{l-1}^T - h_l^err (h_{l-1}^err)^T
                dW[l - 1] += np.outer(hs[l], hs[l - 1]) - np.outer(hs_err[l], hs_err[l - 1])
            db[l - 1] += hs[l] - hs_err[l]
        if mode == "pepita":  # e (h_{L-1}^err)^T, first-pass error
            dW[-1] += np.outer(e, hs_err[L - 1])
            db[-1] += e
        else:  # h_L h_{L-1}^T - y* (h_{L-1}^err)^T
            dW[-1] += np.outer(hs[L], hs[L - 1]) - np.outer(y, hs_err[L - 1])
            db[-1] += hs[L] - y
    return [d / n for d in dW], [d / n for d in db]


def np_pfa(Ws, bs, X, Y, act, out, Bp, Rs):
    """PFA eqs. 4-6 with e = dJ/da (the paper's e is its negative; the optimizer subtracts)."""
    L, n = len(Ws), len(X)
    dW = [np.zeros_like(W) for W in Ws]
    db = [np.zeros(W.shape[0]) for W in Ws]
    dR = [np.zeros_like(R) for R in Rs]
    for x, y in zip(X, Y):
        As, hs = np_forward(Ws, bs, x, act, out)
        es = [None] * L
        es[-1] = np_output_error(out, As[-1], hs[-1], y)
        for l in range(L - 2, -1, -1):
            ebar = Bp[l] @ es[l + 1]  # eq. 4
            es[l] = np_dphi(act, As[l]) * (Rs[l] @ ebar)  # eq. 5
            dR[l] += np.outer(hs[l + 1], ebar)  # eq. 6: x_l ebar_l^T
        for l in range(L):
            dW[l] += np.outer(es[l], hs[l])
            db[l] += es[l]
    return [d / n for d in dW], [d / n for d in db], [d / n for d in dR]


# ---------------------------------------------------------------------------------------------
# building blocks
# ---------------------------------------------------------------------------------------------

def make(rule, sizes, activation="relu", output="softmax", bias=False, seed=0, **cfg_kw):
    """A float64 network + rule; with ``bias`` the biases get random nonzero values."""
    cfg = RunConfig(rule=rule, hidden=list(sizes[1:-1]), activation=activation, output=output,
                    bias=bias, dropout=0.0, **cfg_kw)
    cfg.validate()
    net = FCNetwork(sizes, activation, output, 0.0, bias, "he_uniform", seed, False)
    r = build_rule(rule, net, cfg, seed)
    net.double()
    r.double()
    if bias:
        g = torch.Generator().manual_seed(seed + 77)
        with torch.no_grad():
            for b in net.biases:
                b.copy_(0.3 * torch.randn(b.shape, generator=g, dtype=torch.float64))
    return net, r


def data(sizes, seed=0, scale=1.0):
    rng = np.random.default_rng(1000 + seed)
    X = scale * rng.normal(size=(BATCH, sizes[0]))
    labels = np.arange(BATCH) % sizes[-1]
    rng.shuffle(labels)
    Y = np.eye(sizes[-1])[labels]
    return X, Y


def np_params(net):
    Ws = [W.detach().numpy().copy() for W in net.weights]
    bs = None if net.biases is None else [b.detach().numpy().copy() for b in net.biases]
    return Ws, bs


def run_grads(net, rule, X, Y):
    for p in list(net.parameters()) + list(rule.parameters()):
        p.grad = None
    rule.compute_grads(torch.from_numpy(X), torch.from_numpy(Y), [None] * (net.n_layers - 1))
    dW = [W.grad.detach().numpy().copy() for W in net.weights]
    db = None if net.biases is None else [b.grad.detach().numpy().copy() for b in net.biases]
    return dW, db


def close(actual, expected, rtol=RTOL, atol=ATOL, nontrivial=True):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        assert np.shape(a) == np.shape(e)
        if nontrivial:
            assert np.abs(e).max() > 1e-6, "degenerate test case: expected update is ~0"
        np.testing.assert_allclose(a, e, rtol=rtol, atol=atol)


CASES = [  # sizes, hidden activation, output, bias
    (DEEP, "relu", "softmax", False),
    (DEEP, "tanh", "sigmoid", True),
    (SHALLOW, "relu", "softmax", True),
    (SHALLOW, "sigmoid", "sigmoid", False),
]
CASE_IDS = ["deep-relu-softmax", "deep-tanh-sigmoid-bias", "shallow-relu-softmax-bias",
            "shallow-sigmoid-sigmoid"]


# ---------------------------------------------------------------------------------------------
# 1. every rule's update equals its paper's equation
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("sizes,act,out,bias", CASES + [(DEEP, "sigmoid", "tanh", True),
                                                         (SHALLOW, "tanh", "linear", False)],
                         ids=CASE_IDS + ["deep-tanh-out-mse", "shallow-linear-out-mse"])
def test_bp_matches_eqs_2_3_and_autograd(sizes, act, out, bias):
    net, rule = make("bp", sizes, act, out, bias)
    X, Y = data(sizes)
    Ws, bs = np_params(net)
    dW, db = run_grads(net, rule, X, Y)
    eW, eb, _ = np_chain(Ws, bs, X, Y, act, out, [W.T for W in Ws[1:]])
    close(dW, eW)
    if bias:
        close(db, eb)
    # independent torch.autograd of J = mean over samples of the per-sample summed loss
    tW = [torch.tensor(W, requires_grad=True) for W in Ws]
    tb = [torch.tensor(b, requires_grad=True) for b in bs] if bias else None
    h = torch.from_numpy(X)
    acts = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid, "linear": lambda a: a}
    for l, W in enumerate(tW):
        a = h @ W.t() + (tb[l] if bias else 0)
        h = acts[act](a) if l < len(tW) - 1 else a
    y = torch.from_numpy(Y)
    if out == "softmax":
        J = -(y * torch.log_softmax(h, 1)).sum(1).mean()
    elif out == "sigmoid":
        p = torch.sigmoid(h)
        J = -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).sum(1).mean()
    else:
        J = 0.5 * ((acts[out](h) - y) ** 2).sum(1).mean()
    grads = torch.autograd.grad(J, tW + (tb or []))
    close(dW, [g.numpy() for g in grads[:len(tW)]])
    if bias:
        close(db, [g.numpy() for g in grads[len(tW):]])


@pytest.mark.parametrize("sizes,act,out,bias", CASES, ids=CASE_IDS)
def test_fa_matches_equation(sizes, act, out, bias):
    net, rule = make("fa", sizes, act, out, bias)
    X, Y = data(sizes)
    Ws, bs = np_params(net)
    Bs = [getattr(rule, f"B{l}").numpy().copy() for l in range(2, len(sizes))]
    for l, B in enumerate(Bs):
        assert B.shape == Ws[l + 1].T.shape
        assert not np.allclose(B, Ws[l + 1].T)
    dW, db = run_grads(net, rule, X, Y)
    eW, eb, _ = np_chain(Ws, bs, X, Y, act, out, Bs)
    close(dW, eW)
    if bias:
        close(db, eb)
    # and it is not BP
    bW, _, _ = np_chain(Ws, bs, X, Y, act, out, [W.T for W in Ws[1:]])
    assert not np.allclose(dW[0], bW[0])


@pytest.mark.parametrize("sizes,act,out,bias", CASES[:2], ids=CASE_IDS[:2])
def test_sign_symmetry_matches_equation(sizes, act, out, bias):
    net, rule = make("sign-symmetry", sizes, act, out, bias)
    X, Y = data(sizes)
    Ws, bs = np_params(net)
    Bs = [np.sign(W.T) * np.abs(W).mean() for W in Ws[1:]]
    dW, db = run_grads(net, rule, X, Y)
    eW, eb, _ = np_chain(Ws, bs, X, Y, act, out, Bs)
    close(dW, eW)
    if bias:
        close(db, eb)
    # B follows the current W: change W_L, the feedback changes with it
    with torch.no_grad():
        net.weights[-1].mul_(-2.0)
    Ws2, _ = np_params(net)
    dW2, _ = run_grads(net, rule, X, Y)
    eW2, _, _ = np_chain(Ws2, bs, X, Y, act, out, [np.sign(W.T) * np.abs(W).mean() for W in Ws2[1:]])
    close(dW2, eW2)


@pytest.mark.parametrize("sizes,act,out,bias", CASES[:3], ids=CASE_IDS[:3])
def test_kolen_pollack_matches_equation(sizes, act, out, bias):
    net, rule = make("kolen-pollack", sizes, act, out, bias)
    X, Y = data(sizes)
    Ws, bs = np_params(net)
    Bs = [B.detach().numpy().copy() for B in rule.Bs]
    assert len(rule.feedback_parameters()) == len(sizes) - 2
    dW, db = run_grads(net, rule, X, Y)
    eW, eb, eB = np_chain(Ws, bs, X, Y, act, out, Bs)
    close(dW, eW)
    if bias:
        close(db, eb)
    dB = [B.grad.numpy().copy() for B in rule.Bs]
    close(dB, eB)  # dB_{l+1} = x_l e_{l+1}^T, batch mean
    for l in range(len(dB)):  # ... the transpose of W_{l+1}'s update
        np.testing.assert_allclose(dB[l], dW[l + 1].T, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("sizes,act,out,bias", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("name,signal", [("dfa", "error"), ("sdfa", "error_sign")])
def test_dfa_and_sdfa_match_equation(name, signal, sizes, act, out, bias):
    net, rule = make(name, sizes, act, out, bias)
    X, Y = data(sizes)
    Ws, bs = np_params(net)
    Bs = [getattr(rule, f"B{l}").numpy().copy() for l in range(1, len(sizes) - 1)]
    for l, B in enumerate(Bs):
        assert B.shape == (sizes[l + 1], sizes[-1])
    dW, db = run_grads(net, rule, X, Y)
    eW, eb = np_direct(Ws, bs, X, Y, act, out, Bs, signal)
    close(dW, eW)
    if bias:
        close(db, eb)


@pytest.mark.parametrize("sizes", [DEEP, SHALLOW], ids=["deep", "shallow"])
def test_drtp_matches_algorithm_1(sizes):
    """DRTP paper Algorithm 1 with tanh hidden units and sigmoid outputs (and biases):
    W_k <- W_k + eta (B_k^T y* ⊙ f'(z_k)) y_{k-1}^T; output W_K <- W_K + eta (y* - y_K) y_{K-1}^T
    (the paper's 1/C at the output is the class-averaged BCE; here J sums over classes)."""
    net, rule = make("drtp", sizes, "tanh", "sigmoid", True)
    X, Y = data(sizes)
    Ws, bs = np_params(net)
    Bs = [getattr(rule, f"B{l}").numpy().copy() for l in range(1, len(sizes) - 1)]
    dW, db = run_grads(net, rule, X, Y)
    eW, eb = np_direct(Ws, bs, X, Y, "tanh", "sigmoid", Bs, "target")
    close(dW, eW)
    close(db, eb)
    # the hidden updates depend on the target only: changing the output layer leaves them alone
    with torch.no_grad():
        net.weights[-1].mul_(3.0)
    dW2, db2 = run_grads(net, rule, X, Y)
    close(dW2[:-1], dW[:-1])
    close(db2[:-1], db[:-1])
    # one SGD step moves the weights exactly as Algorithm 1 writes it (per-sample sum, mean)
    with torch.no_grad():
        net.weights[-1].div_(3.0)
    eta = 0.05
    opt = torch.optim.SGD(net.parameters(), lr=eta, momentum=0.0)
    rule.train_step(torch.from_numpy(X), torch.from_numpy(Y), opt)
    newW = [W.copy() for W in Ws]
    newb = [b.copy() for b in bs]
    L = len(Ws)
    for x, y in zip(X, Y):
        zs, ys = np_forward(Ws, bs, x, "tanh", "sigmoid")
        for k in range(L - 1):
            d = (Bs[k] @ y) * (1.0 - np.tanh(zs[k]) ** 2)
            newW[k] += eta / BATCH * np.outer(d, ys[k])
            newb[k] += eta / BATCH * d
        newW[-1] += eta / BATCH * np.outer(y - ys[-1], ys[L - 1])
        newb[-1] += eta / BATCH * (y - ys[-1])
    close(np_params(net)[0], newW)
    close(np_params(net)[1], newb)


@pytest.mark.parametrize("sizes,act,out,bias", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_pepita_matches_algorithm_1(sizes, act, out, bias, sign):
    net, rule = make("pepita", sizes, act, out, bias, f_scale=2.0, modulation_sign=sign)
    X, Y = data(sizes)
    Ws, bs = np_params(net)
    F = rule.F.numpy().copy()
    assert F.shape == (sizes[0], sizes[-1])
    dW, db = run_grads(net, rule, X, Y)
    eW, eb = np_pepita(Ws, bs, X, Y, act, out, F, sign)
    close(dW, eW)
    if bias:
        close(db, eb)


def test_pepita_f0_trains_only_the_output_by_delta_rule():
    """D&K Appendix D eq. 10: with F = 0 the hidden layers are frozen, the output learns by the
    delta rule e h_{L-1}^T."""
    net, rule = make("pepita-f0", DEEP, "relu", "softmax", True)
    X, Y = data(DEEP)
    Ws, bs = np_params(net)
    assert not rule.F.any()
    dW, db = run_grads(net, rule, X, Y)
    for l in range(len(Ws) - 1):
        assert np.all(dW[l] == 0.0) and np.all(db[l] == 0.0)
    eW = np.zeros_like(Ws[-1])
    eb = np.zeros(Ws[-1].shape[0])
    for x, y in zip(X, Y):
        _, hs = np_forward(Ws, bs, x, "relu", "softmax")
        eW += np.outer(hs[-1] - y, hs[-2]) / BATCH
        eb += (hs[-1] - y) / BATCH
    close([dW[-1], db[-1]], [eW, eb])


def test_pepita_random_matches_appendix_d_eq_11(monkeypatch):
    k = 0.5
    net, rule = make("pepita-random", DEEP, "tanh", "softmax", True, f_scale=2.0,
                     random_perturbation_k=k)
    X, Y = data(DEEP)
    Ws, bs = np_params(net)
    F = rule.F.numpy().copy()
    r = np.random.default_rng(5).uniform(0.0, 1.0, size=(BATCH, DEEP[-1]))
    calls = []

    def fake_rand(*size, **kw):
        size = tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list)) else size
        calls.append(size)
        return torch.tensor(r, dtype=kw.get("dtype") or torch.float64)

    monkeypatch.setattr(torch, "rand", fake_rand)
    dW, db = run_grads(net, rule, X, Y)
    assert calls == [(BATCH, DEEP[-1])]  # r has the dimension of e, one per sample
    eW, eb = np_pepita(Ws, bs, X, Y, "tanh", "softmax", F, 1.0, perturbation=k * r)
    close(dW, eW)
    close(db, eb)
    # it is not PEPITA: the modulation no longer carries the error
    pW, _ = np_pepita(Ws, bs, X, Y, "tanh", "softmax", F, 1.0)
    assert not np.allclose(dW[0], pW[0])


@pytest.mark.parametrize("sizes,act,out,bias", CASES[:3], ids=CASE_IDS[:3])
@pytest.mark.parametrize("sign", [-1.0, 1.0])
def test_pepita_hebbian_matches_eqs_13_14(sizes, act, out, bias, sign):
    net, rule = make("pepita-hebbian", sizes, act, out, bias, f_scale=2.0, modulation_sign=sign)
    X, Y = data(sizes)
    Ws, bs = np_params(net)
    F = rule.F.numpy().copy()
    dW, db = run_grads(net, rule, X, Y)
    eW, eb = np_pepita(Ws, bs, X, Y, act, out, F, sign, mode="hebbian")
    close(dW, eW)
    if bias:
        close(db, eb)
    # eq. 14 for the first layer, written out: h_1 x^T - h_1^err (x + s F e)^T
    e1 = np.zeros_like(Ws[0])
    for x, y in zip(X, Y):
        _, hs = np_forward(Ws, bs, x, act, out)
        xe = x + sign * F @ (hs[-1] - y)
        _, he = np_forward(Ws, bs, xe, act, out)
        e1 += (np.outer(hs[1], x) - np.outer(he[1], xe)) / BATCH
    close([dW[0]], [e1])


@pytest.mark.parametrize("bias", [False, True])
def test_pepita_time_local_matches_algorithm_2(bias):
    """S Algorithm 2: W+ = W - eta h h^T during the clean pass; the modulated pass (input x - F e,
    e from the clean pass) runs on W+ and W = W+ - eta (-h^err h^err^T), -y* h^err at the output."""
    eta = 0.3
    sizes, act, out = DEEP, "tanh", "softmax"
    net, rule = make("pepita-time-local", sizes, act, out, bias, f_scale=2.0, modulation_sign=-1.0)
    X, Y = data(sizes)
    Ws, bs = np_params(net)
    F = rule.F.numpy().copy()
    opt = torch.optim.SGD(net.parameters(), lr=eta, momentum=0.0)
    rule.train_step(torch.from_numpy(X), torch.from_numpy(Y), opt)
    L = len(Ws)
    # phase 1, per sample on the original weights
    Wp = [W.copy() for W in Ws]
    bp = [b.copy() for b in bs] if bias else None
    errs = []
    for x, y in zip(X, Y):
        _, hs = np_forward(Ws, bs, x, act, out)
        for l in range(L):
            Wp[l] -= eta / BATCH * np.outer(hs[l + 1], hs[l])
            if bias:
                bp[l] -= eta / BATCH * hs[l + 1]
        errs.append(hs[-1] - y)
    # phase 2 on W+
    Wn = [W.copy() for W in Wp]
    bn = [b.copy() for b in bp] if bias else None
    for x, y, e in zip(X, Y, errs):
        _, he = np_forward(Wp, bp, x - F @ e, act, out)
        for l in range(L):
            post = he[l + 1] if l < L - 1 else y
            Wn[l] -= eta / BATCH * (-np.outer(post, he[l]))
            if bias:
                bn[l] -= eta / BATCH * (-post)
    newW, newb = np_params(net)
    close(newW, Wn)
    if bias:
        close(newb, bn)
    # and not the simultaneous PEPITA-Hebbian update
    hW, _ = np_pepita(Ws, bs, X, Y, act, out, F, -1.0, mode="hebbian")
    assert not np.allclose(newW[0], Ws[0] - eta * hW[0])


def test_afa_matches_eq_11_one_hidden_layer():
    """S eq. 11 (s = -1, ReLU): dW_1 = [(W_1 F e) ⊙ h_1'] x^T, dW_2 = e h_1^T."""
    net, rule = make("pepita-afa", SHALLOW, "relu", "softmax", True, f_scale=2.0,
                     modulation_sign=-1.0)
    X, Y = data(SHALLOW)
    Ws, bs = np_params(net)
    F = rule.F.numpy().copy()
    dW, db = run_grads(net, rule, X, Y)
    eW = [np.zeros_like(W) for W in Ws]
    eb = [np.zeros(W.shape[0]) for W in Ws]
    for x, y in zip(X, Y):
        a1 = Ws[0] @ x + bs[0]
        h1 = np.maximum(a1, 0)
        h2 = np_out("softmax", Ws[1] @ h1 + bs[1])
        e = h2 - y
        d1 = (Ws[0] @ F @ e) * (a1 > 0)
        eW[0] += np.outer(d1, x) / BATCH
        eb[0] += d1 / BATCH
        eW[1] += np.outer(e, h1) / BATCH
        eb[1] += e / BATCH
    close(dW, eW)
    close(db, eb)


def test_afa_deep_linearisation_and_limit_of_pepita():
    """Deeper layers: h_l - h_l^err ≈ -J_l(s F e) (the forward-mode linearisation), so
    dW_2 = [phi'(a_2) ⊙ W_2 (phi'(a_1) ⊙ W_1 F e)] h_1^T for s = -1; and AFA is PEPITA's limit
    for small F."""
    act = "tanh"
    net, rule = make("pepita-afa", DEEP, act, "softmax", False, f_scale=2.0, modulation_sign=-1.0)
    X, Y = data(DEEP)
    Ws, _ = np_params(net)
    F = rule.F.numpy().copy()
    dW, _ = run_grads(net, rule, X, Y)
    eW = [np.zeros_like(W) for W in Ws]
    for x, y in zip(X, Y):
        As, hs = np_forward(Ws, None, x, act, "softmax")
        e = hs[-1] - y
        v = F @ e  # -s F e with s = -1
        for l in range(len(Ws) - 1):
            v = np_dphi(act, As[l]) * (Ws[l] @ v)
            eW[l] += np.outer(v, hs[l]) / BATCH
        eW[-1] += np.outer(e, hs[-2]) / BATCH
    close(dW, eW)
    # small F: PEPITA's hidden updates / eps -> AFA's hidden updates / eps
    eps = 1e-5
    pW, _ = np_pepita(Ws, None, X, Y, act, "softmax", eps * F, -1.0)
    for l in range(len(Ws) - 1):
        np.testing.assert_allclose(pW[l] / eps, eW[l], rtol=1e-3, atol=1e-6)


def _fake_randn_factory(seed, draws):
    rng = np.random.default_rng(seed)

    def fake_randn(*size, **kw):
        size = tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list)) else size
        arr = rng.standard_normal(size)
        draws.append(arr)
        return torch.tensor(arr, dtype=kw.get("dtype") or torch.float64)

    return fake_randn


def test_pepita_wm_projection_and_mirror_step(monkeypatch):
    """S Sec. 6.1: F = F_1 ... F_L (F_l shaped like W_l^T); mirror: F_l += eta_WM xi^T (xi W_l^T)/N
    (with decay), then every F_l *= (sigma_F0/sigma_F(t))^(1/L) so std(F) stays at its initial
    value."""
    sizes, act = DEEP, "relu"
    eta_wm, decay, s_noise, nb = 0.2, 0.05, 0.8, 5
    net, rule = make("pepita-wm", sizes, act, "softmax", False, f_scale=2.0, modulation_sign=-1.0,
                     wm_lr=eta_wm, wm_weight_decay=decay, wm_noise_std=s_noise)
    X, Y = data(sizes)
    Ws, _ = np_params(net)
    fs = [f.detach().numpy().copy() for f in rule.factors]
    for l, f in enumerate(fs):
        assert f.shape == Ws[l].T.shape
    P0 = fs[0] @ fs[1] @ fs[2]
    np.testing.assert_allclose(rule.projection().detach().numpy(), P0, rtol=1e-12, atol=1e-15)
    sigma0 = float(rule.sigma_F0)
    np.testing.assert_allclose(P0.std(), sigma0, rtol=1e-6)  # initial std of the product
    # PEPITA with the product F and s = -1
    dW, _ = run_grads(net, rule, X, Y)
    eW, _ = np_pepita(Ws, None, X, Y, act, "softmax", P0, -1.0)
    close(dW, eW)
    # one mirror step with known noise
    draws = []
    monkeypatch.setattr(torch, "randn", _fake_randn_factory(3, draws))
    rule.mirror_step(nb)
    assert [d.shape for d in draws] == [(nb, W.shape[1]) for W in Ws]
    moved = []
    for f, W, raw in zip(fs, Ws, draws):
        acc = np.zeros_like(f)
        for xi in raw * s_noise:  # per noise sample: xi r^T, r = W xi
            acc += np.outer(xi, W @ xi)
        moved.append(f + eta_wm * acc / nb - eta_wm * decay * f)
    P = moved[0] @ moved[1] @ moved[2]
    c = (sigma0 / P.std()) ** (1.0 / len(moved))
    expected = [c * f for f in moved]
    close([f.detach().numpy() for f in rule.factors], expected)
    P1 = rule.projection().detach().numpy()
    np.testing.assert_allclose(P1.std(), sigma0, rtol=1e-12)
    # sigma_F(t) = sigma_F(0), whichever estimator of the std one uses for both
    np.testing.assert_allclose(P1.std(), P0.std(), rtol=1e-6)
    np.testing.assert_allclose(np.std(P1, ddof=1), np.std(P0, ddof=1), rtol=1e-6)
    # after_step mirrors with the configured batch size
    draws.clear()
    rule.after_step()
    assert [d.shape for d in draws] == [(rule.cfg.training.batch_size, W.shape[1]) for W in Ws]


@pytest.mark.parametrize("sizes,act,out,bias", CASES[:3], ids=CASE_IDS[:3])
@pytest.mark.parametrize("name", ["pfa", "pfa-o"])
def test_pfa_matches_eqs_4_6(name, sizes, act, out, bias):
    net, rule = make(name, sizes, act, out, bias, pfa_expansion=2.0)
    X, Y = data(sizes)
    Ws, bs = np_params(net)
    Bp = [getattr(rule, f"B{l}").numpy().copy() for l in range(1, len(sizes) - 1)]
    Rs = [R.detach().numpy().copy() for R in rule.Rs]
    for l in range(len(sizes) - 2):
        nbar = round(2.0 * sizes[l + 2])
        assert Bp[l].shape == (nbar, sizes[l + 2]) and Rs[l].shape == (sizes[l + 1], nbar)
        if name == "pfa-o":
            np.testing.assert_allclose(Bp[l].T @ Bp[l], np.eye(sizes[l + 2]), atol=1e-6)
    dW, db = run_grads(net, rule, X, Y)
    eW, eb, eR = np_pfa(Ws, bs, X, Y, act, out, Bp, Rs)
    close(dW, eW)
    if bias:
        close(db, eb)
    close([R.grad.numpy() for R in rule.Rs], eR)
    # the sign convention end to end: one SGD step gives R <- R + eta x ebar_paper^T with the
    # paper's e = -dJ/da, i.e. R - eta x ebar^T here
    eta = 0.1
    opt = torch.optim.SGD(list(net.parameters()) + rule.feedback_parameters(), lr=eta, momentum=0.0)
    rule.train_step(torch.from_numpy(X), torch.from_numpy(Y), opt)
    close([R.detach().numpy() for R in rule.Rs], [R - eta * g for R, g in zip(Rs, eR)],
          nontrivial=False)


def test_weight_mirror_grads_and_mirror_step(monkeypatch):
    """FA with B; mirror mode: xi ~ N(0, s^2), r = W xi, B += eta_WM xi r^T (batch mean) - eta_WM
    lambda B, lambda defaulting to s^2."""
    sizes, act = DEEP, "relu"
    eta_wm, s_noise, nb = 0.3, 0.7, 4
    net, rule = make("weight-mirror", sizes, act, "softmax", True, wm_lr=eta_wm,
                     wm_noise_std=s_noise)
    X, Y = data(sizes)
    Ws, bs = np_params(net)
    Bs = [B.detach().numpy().copy() for B in rule.Bs]
    dW, db = run_grads(net, rule, X, Y)
    eW, eb, _ = np_chain(Ws, bs, X, Y, act, "softmax", Bs)
    close(dW, eW)
    close(db, eb)
    assert all(B.grad is None for B in rule.Bs)  # no KP update in engaged mode
    draws = []
    monkeypatch.setattr(torch, "randn", _fake_randn_factory(11, draws))
    rule.mirror_step(nb)
    assert [d.shape for d in draws] == [(nb, W.shape[1]) for W in Ws[1:]]
    expected = []
    for B, W, raw in zip(Bs, Ws[1:], draws):
        acc = np.zeros_like(B)
        for xi in raw * s_noise:
            acc += np.outer(xi, W @ xi)
        expected.append(B + eta_wm * acc / nb - eta_wm * s_noise ** 2 * B)
    close([B.detach().numpy() for B in rule.Bs], expected)


def test_weight_mirror_converges_to_w_transpose():
    """With lambda_WM = s^2, repeated mirroring drives B_l to W_l^T (Akrout et al. 2019)."""
    torch.manual_seed(0)
    net, rule = make("weight-mirror", DEEP, "relu", "softmax", False, wm_lr=0.2, wm_noise_std=1.0)
    B0 = [B.detach().clone() for B in rule.Bs]
    rule.pre_train(100, 512)
    for W, B, Bi in zip(net.weights[1:], rule.Bs, B0):
        Wt = W.detach().t()
        assert float((Bi - Wt).norm() / Wt.norm()) > 0.5  # FA's B starts far from W^T
        assert float((B.detach() - Wt).norm() / Wt.norm()) < 0.1


# ---------------------------------------------------------------------------------------------
# 2. identity cases
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("sizes,act,out,bias", CASES, ids=CASE_IDS)
def test_fa_with_transposed_weights_is_bp(sizes, act, out, bias):
    net, rule = make("fa", sizes, act, out, bias)
    bnet, bp = make("bp", sizes, act, out, bias)
    with torch.no_grad():
        for l in range(2, len(sizes)):
            getattr(rule, f"B{l}").copy_(net.weights[l - 1].t())
    X, Y = data(sizes)
    dW, db = run_grads(net, rule, X, Y)
    bW, bb = run_grads(bnet, bp, X, Y)
    close(dW, bW, rtol=1e-12)
    if bias:
        close(db, bb, rtol=1e-12)


def test_pepita_with_zero_F_freezes_hidden_and_delta_rule_output():
    eta = 0.2
    net, rule = make("pepita", DEEP, "relu", "softmax", True)
    with torch.no_grad():
        rule.F.zero_()
    X, Y = data(DEEP)
    Ws, bs = np_params(net)
    opt = torch.optim.SGD(net.parameters(), lr=eta, momentum=0.0)
    rule.train_step(torch.from_numpy(X), torch.from_numpy(Y), opt)
    newW, newb = np_params(net)
    for l in range(len(Ws) - 1):
        assert np.array_equal(newW[l], Ws[l]) and np.array_equal(newb[l], bs[l])
    eW, eb = Ws[-1].copy(), bs[-1].copy()
    for x, y in zip(X, Y):
        _, hs = np_forward(Ws, bs, x, "relu", "softmax")
        eW -= eta / BATCH * np.outer(hs[-1] - y, hs[-2])
        eb -= eta / BATCH * (hs[-1] - y)
    close([newW[-1], newb[-1]], [eW, eb])


@pytest.mark.parametrize("bias", [False, True])
def test_pfa_with_identity_B_is_kolen_pollack(bias):
    """PFA paper: with B = I (Nbar = N_{l+1}) PFA reduces to KP, R_l playing KP's B_{l+1}; also
    through several SGD steps with momentum and weight decay on W and R / B."""
    sizes, act, out = DEEP, "tanh", "softmax"
    net, pfa = make("pfa", sizes, act, out, bias, pfa_expansion=1.0)
    knet, kp = make("kolen-pollack", sizes, act, out, bias)
    with torch.no_grad():
        for l in range(1, len(sizes) - 1):
            B = getattr(pfa, f"B{l}")
            assert B.shape == (sizes[l + 1], sizes[l + 1])
            B.copy_(torch.eye(sizes[l + 1], dtype=B.dtype))
            kp.Bs[l - 1].copy_(pfa.Rs[l - 1])
        for p, q in zip(knet.parameters(), net.parameters()):
            p.copy_(q)
    X, Y = data(sizes)
    dW, db = run_grads(net, pfa, X, Y)
    kW, kb = run_grads(knet, kp, X, Y)
    close(dW, kW, rtol=1e-12)
    if bias:
        close(db, kb, rtol=1e-12)
    close([R.grad.numpy() for R in pfa.Rs], [B.grad.numpy() for B in kp.Bs], rtol=1e-12)
    opts = [torch.optim.SGD(list(n.parameters()) + r.feedback_parameters(), lr=0.1, momentum=0.9,
                            weight_decay=1e-2) for n, r in ((net, pfa), (knet, kp))]
    for step in range(3):
        Xs, Ys = data(sizes, seed=step + 1)
        pfa.train_step(torch.from_numpy(Xs), torch.from_numpy(Ys), opts[0])
        kp.train_step(torch.from_numpy(Xs), torch.from_numpy(Ys), opts[1])
    close(np_params(net)[0], np_params(knet)[0], rtol=1e-11)
    close([R.detach().numpy() for R in pfa.Rs], [B.detach().numpy() for B in kp.Bs], rtol=1e-11)


@pytest.mark.parametrize("bias", [False, True])
def test_pfa_with_frozen_R_is_fa_with_product_feedback(bias):
    """PFA paper: with lr and decay of R set to zero PFA is FA with feedback R_l B_l."""
    sizes, act, out = DEEP, "relu", "softmax"
    net, pfa = make("pfa", sizes, act, out, bias, pfa_expansion=3.0)
    fnet, fa = make("fa", sizes, act, out, bias)
    with torch.no_grad():
        for l in range(2, len(sizes)):
            getattr(fa, f"B{l}").copy_(pfa.Rs[l - 2] @ getattr(pfa, f"B{l - 1}"))
        for p, q in zip(fnet.parameters(), net.parameters()):
            p.copy_(q)
    X, Y = data(sizes)
    dW, db = run_grads(net, pfa, X, Y)
    fW, fb = run_grads(fnet, fa, X, Y)
    close(dW, fW, rtol=1e-11)
    if bias:
        close(db, fb, rtol=1e-11)
    R0 = [R.detach().clone() for R in pfa.Rs]
    opt = torch.optim.SGD([{"params": list(net.parameters()), "weight_decay": 1e-2},
                           {"params": pfa.feedback_parameters(), "lr": 0.0, "weight_decay": 0.0}],
                          lr=0.1, momentum=0.9)
    fopt = torch.optim.SGD(fnet.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-2)
    for step in range(3):
        Xs, Ys = data(sizes, seed=step + 1)
        pfa.train_step(torch.from_numpy(Xs), torch.from_numpy(Ys), opt)
        fa.train_step(torch.from_numpy(Xs), torch.from_numpy(Ys), fopt)
    close(np_params(net)[0], np_params(fnet)[0], rtol=1e-11)
    for R, R_init in zip(pfa.Rs, R0):
        assert torch.equal(R.detach(), R_init)


# ---------------------------------------------------------------------------------------------
# 3. custom autograd functions
# ---------------------------------------------------------------------------------------------

def _rand(*shape, seed, requires_grad=False):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64).requires_grad_(requires_grad)


def test_gradcheck_feedback_linear():
    x = _rand(4, 5, seed=1, requires_grad=True)
    W = _rand(3, 5, seed=2, requires_grad=True)
    b = _rand(3, seed=3, requires_grad=True)
    # B = W^T: an ordinary linear layer, every gradient is the true one
    B = W.detach().t().clone()
    assert torch.autograd.gradcheck(FeedbackLinear.apply, (x, W, b, B))
    assert torch.autograd.gradcheck(FeedbackLinear.apply, (x, W, None, B))
    # random B: dW, db are still the true gradients
    Br = _rand(5, 3, seed=4)
    assert torch.autograd.gradcheck(FeedbackLinear.apply, (x.detach(), W, b, Br))
    # dx = g B^T and (KP) dB = x^T g, per sample
    xr, Brg = x.detach().clone().requires_grad_(True), Br.clone().requires_grad_(True)
    g = _rand(4, 3, seed=5)
    FeedbackLinear.apply(xr, W, b, Brg).backward(g)
    xn, gn, Bn = xr.detach().numpy(), g.numpy(), Br.numpy()
    np.testing.assert_allclose(xr.grad.numpy(), np.stack([Bn @ gi for gi in gn]), rtol=1e-12)
    np.testing.assert_allclose(Brg.grad.numpy(), sum(np.outer(xi, gi) for xi, gi in zip(xn, gn)),
                               rtol=1e-12)


def test_gradcheck_product_feedback_linear():
    x = _rand(4, 5, seed=1, requires_grad=True)
    W = _rand(3, 5, seed=2, requires_grad=True)
    b = _rand(3, seed=3, requires_grad=True)
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(8, 3)))  # B^T B = I
    B = torch.from_numpy(q)
    R = W.detach().t() @ B.t()  # R B = W^T
    assert torch.allclose(R @ B, W.detach().t())
    assert torch.autograd.gradcheck(ProductFeedbackLinear.apply, (x, W, b, R, B))
    Rr = _rand(5, 8, seed=6)
    assert torch.autograd.gradcheck(ProductFeedbackLinear.apply, (x.detach(), W, b, Rr, B))
    # dx = g B^T R^T (eqs. 4-5) and dR = x^T ebar (eq. 6), per sample
    xr, Rg = x.detach().clone().requires_grad_(True), Rr.clone().requires_grad_(True)
    g = _rand(4, 3, seed=5)
    ProductFeedbackLinear.apply(xr, W, b, Rg, B).backward(g)
    Rn, Bn = Rr.numpy(), B.numpy()
    np.testing.assert_allclose(xr.grad.numpy(), np.stack([Rn @ (Bn @ gi) for gi in g.numpy()]),
                               rtol=1e-12)
    np.testing.assert_allclose(
        Rg.grad.numpy(), sum(np.outer(xi, Bn @ gi) for xi, gi in zip(x.detach().numpy(), g.numpy())),
        rtol=1e-12)


@pytest.mark.parametrize("signal", ["error", "error_sign", "target"])
def test_gradcheck_direct_feedback_and_injected_signal(signal):
    n, n_out = 4, 3
    Bs = [_rand(5, n_out, seed=1), _rand(2, n_out, seed=2)]
    target = torch.eye(n_out, dtype=torch.float64)[torch.tensor([0, 2, 1, 2])]
    hidden = [_rand(n, 5, seed=3), _rand(n, 2, seed=4)]
    a = _rand(n, n_out, seed=5, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda a_: DirectFeedback.apply(a_, signal, target, 2, *Bs, *hidden), (a,))
    hid = [h.clone().requires_grad_(True) for h in hidden]
    g = _rand(n, n_out, seed=6)
    out = DirectFeedback.apply(a, signal, target, 2, *Bs, *hid)
    out.backward(g)
    np.testing.assert_allclose(a.grad.numpy(), g.numpy(), rtol=0, atol=0)
    gn, tn = g.numpy(), target.numpy()
    s = {"error": gn, "error_sign": np.sign(gn) / n, "target": -tn / n}[signal]
    for h, B in zip(hid, Bs):
        np.testing.assert_allclose(h.grad.numpy(), np.stack([B.numpy() @ si for si in s]),
                                   rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------------------------------------
# 4. dropout masks
# ---------------------------------------------------------------------------------------------

def test_pepita_passes_share_the_dropout_mask(monkeypatch):
    sizes, act = DEEP, "relu"
    cfg = RunConfig(rule="pepita", hidden=list(sizes[1:-1]), dropout=0.5, f_scale=2.0)
    net = FCNetwork(sizes, act, "softmax", 0.5, False, "he_uniform", 0, False)
    rule = build_rule("pepita", net, cfg, 0)
    rule.double()
    net.train()
    X, Y = data(sizes)
    Ws, _ = np_params(net)
    F = rule.F.numpy().copy()
    rng = np.random.default_rng(9)
    masks = [rng.integers(0, 2, size=(BATCH, n)).astype(float) / 0.5 for n in sizes[1:-1]]
    dropped = [[1, 3], [0]]  # units dropped in every sample
    for m, d in zip(masks, dropped):
        m[:, d] = 0.0
        m[:, [j for j in range(m.shape[1]) if j not in d][0]] = 2.0  # one unit always kept
    calls = []

    def fixed_masks(batch, device):
        calls.append(batch)
        return [torch.from_numpy(m.copy()) for m in masks]

    monkeypatch.setattr(net, "dropout_masks", fixed_masks)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.0)
    rule.train_step(torch.from_numpy(X), torch.from_numpy(Y), opt)
    assert calls == [BATCH]  # one draw per batch, used by both passes
    newW, _ = np_params(net)
    eW, _ = np_pepita(Ws, None, X, Y, act, "softmax", F, 1.0, masks=masks)
    close(newW, [W - 0.1 * d for W, d in zip(Ws, eW)], nontrivial=False)
    for l, d in enumerate(dropped):
        assert np.all(newW[l][d] == Ws[l][d])  # a dropped unit's row of W_l does not move
        assert np.all(newW[l + 1][:, d] == Ws[l + 1][:, d])  # nor its outgoing column
    # the explicit masks path of compute_grads gives the same update
    for p in net.parameters():
        p.grad = None
    with torch.no_grad():
        for p, W in zip(net.weights, Ws):
            p.copy_(torch.from_numpy(W))
    rule.compute_grads(torch.from_numpy(X), torch.from_numpy(Y),
                       [torch.from_numpy(m) for m in masks])
    close([W.grad.numpy() for W in net.weights], eW)
    for l, d in enumerate(dropped):
        assert np.all(net.weights[l].grad.numpy()[d] == 0.0)
