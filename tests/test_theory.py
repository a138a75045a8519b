"""The AFA teacher–student theory (neurosim.theory; Srinivasan et al. 2023 "S", App. E) against
Monte Carlo, its early-time expansion, the rate backend's rules and simulation, and its CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from neurosim.theory import averages as av
from neurosim.theory.afa import (State, Teacher, TheoryError, covariance, derivatives, early_expansion,
                                 eps_g, integrate, readout)
from neurosim.theory.curves import plateau
from neurosim.theory.setting import initial_conditions, order_parameters, realize


def _random_covariance(n: int, rng) -> np.ndarray:
    A = rng.standard_normal((n, n + 2)) / np.sqrt(n)
    return A @ A.T + 0.2 * np.eye(n)


def _mc(fn, C, rng, samples=1_000_000):
    """Mean and standard error of fn(u), u ~ N(0, C)."""
    u = rng.standard_normal((samples, C.shape[0])) @ np.linalg.cholesky(C).T
    x = fn(u)
    return x.mean(), x.std(ddof=1) / np.sqrt(samples)


@pytest.mark.parametrize("idx", [(0, 1), (2, 2), (1, 3)])
def test_I2_matches_monte_carlo(idx):
    rng = np.random.default_rng(1)
    C = _random_covariance(4, rng)
    a, b = idx
    mean, se = _mc(lambda u: av.g(u[:, a]) * av.g(u[:, b]), C, rng)
    assert abs(av.I2(C, a, b) - mean) < 4 * se


@pytest.mark.parametrize("idx", [(0, 1, 2), (0, 0, 1), (1, 2, 2), (3, 3, 3)])
def test_I3_matches_monte_carlo(idx):
    rng = np.random.default_rng(2)
    C = _random_covariance(4, rng)
    a, b, c = idx
    mean, se = _mc(lambda u: av.g_prime(u[:, a]) * u[:, b] * av.g(u[:, c]), C, rng)
    assert abs(av.I3(C, a, b, c) - mean) < 4 * se


@pytest.mark.parametrize("idx", [(0, 1, 2, 3), (0, 0, 1, 1), (0, 1, 0, 1), (2, 2, 2, 2)])
def test_I4_matches_monte_carlo(idx):
    rng = np.random.default_rng(3)
    C = _random_covariance(4, rng)
    a, b, c, d = idx
    mean, se = _mc(lambda u: av.g_prime(u[:, a]) * av.g_prime(u[:, b]) * av.g(u[:, c]) * av.g(u[:, d]), C, rng)
    assert abs(av.I4(C, a, b, c, d) - mean) < 4 * se


def _state(K=2, M=3, seed=0):
    """A generic initial condition: random order parameters of a D = 40 draw, W₂ ≠ 0."""
    return initial_conditions("random", K, M, 40, seed=seed, q0=0.8, w2_std=0.7, f_scale=1.3)


def test_every_average_of_the_odes_matches_monte_carlo():
    """Each entry of the averages in eqs. 22–24 (closed forms) within 4 standard errors."""
    state, teacher = _state()
    C, v = covariance(state, teacher), readout(state, teacher)
    closed = av.moment_averages(C, v, state.K)
    mean, se = av.monte_carlo_averages(C, v, state.K, 1_000_000, np.random.default_rng(4))
    for name in ("g_e", "gp_u_e", "gp_gp_e2", "eps_g"):
        c, m, s = (np.asarray(getattr(x, name)) for x in (closed, mean, se))
        assert np.all(np.abs(c - m) < 4 * s), (name, c, m, s)
    assert closed.eps_g == pytest.approx(eps_g(state, teacher), rel=1e-12)


def test_eps_g_of_eq_24_equals_the_networks_error_on_a_held_out_set():
    """Eq. 24 from the order parameters of realised weights vs ½(ŷ − y)² on 400k Gaussian x."""
    state, teacher = _state(K=3, M=2, seed=1)
    w = realize(state, teacher, 60, seed=5)
    x = np.random.default_rng(6).standard_normal((400_000, 60))
    e = av.g(x @ w.W1.T / np.sqrt(60)) @ w.W2 - av.g(x @ w.teacher_W1.T / np.sqrt(60)) @ w.teacher_W2
    se = (0.5 * e ** 2).std() / np.sqrt(len(e))
    assert abs(0.5 * np.mean(e ** 2) - eps_g(state, teacher)) < 4 * se


def test_realised_weights_have_the_initial_order_parameters():
    state, teacher = _state()
    s2, t2 = order_parameters(realize(state, teacher, 50, seed=3))
    for a, b in [(s2.Q, state.Q), (s2.R, state.R), (s2.f, state.f), (t2.T, teacher.T), (t2.f, teacher.f)]:
        np.testing.assert_allclose(a, b, atol=1e-12)
    assert t2.q_f == pytest.approx(teacher.q_f, rel=1e-12)


def _e1_state(f0=(0.4, -0.3), ft=(0.6, 0.5), W2t=(1.0, -0.7), q0=0.5, q_f=4.0):
    """App. E.1's initial condition, W₂ = 0, R = 0, T = I, Q = q0·I, with order-one feedback
    overlaps f(0), f̃ and q_f ≠ 1, where the printed and the corrected eq. 29 differ."""
    K, M = len(f0), len(ft)
    return (State(q0 * np.eye(K), np.zeros((K, M)), np.zeros(K), np.array(f0, float)),
            Teacher(np.eye(M), np.array(W2t, float), np.array(ft, float), q_f))


def test_ode_slopes_at_zero_are_eqs_27_to_29():
    state, teacher = _e1_state()
    eta = 0.3
    d = derivatives(state, teacher, eta)
    ex = early_expansion(state, teacher, eta)
    np.testing.assert_allclose(d.R, ex.R_slope, rtol=1e-12)                      # eq. 27
    np.testing.assert_allclose(d.W2, 0.0, atol=1e-15)                            # eq. 27
    np.testing.assert_allclose(d.f, ex.f_slope, rtol=1e-12)                      # eq. 29 (corrected)
    printed = (2 / np.pi) * eta * state.f / np.sqrt((1 + 0.5) * (1 + teacher.q_f) - state.f ** 2) \
        * (teacher.W2 @ teacher.f)
    assert np.all(np.abs(printed / d.f - 1) > 0.3)  # the printed eq. 29 is not the ODE's slope
    # eq. 28: dW₂/dt = W2_curvature · t + O(t²)
    t = 1e-4
    s_t = State(state.Q, ex.R_slope * t, np.zeros(2), state.f)
    np.testing.assert_allclose(derivatives(s_t, teacher, eta).W2 / t, ex.W2_curvature, rtol=1e-3)


def test_expansion_matches_the_integrated_odes_at_small_t():
    state, teacher = _e1_state()
    eta = 0.3
    ex = early_expansion(state, teacher, eta)
    ts = np.array([0.0, 0.01, 0.02, 0.05])
    traj = integrate(state, teacher, eta, ts)
    for i, t in enumerate(ts[1:], start=1):
        R, W2, f = ex.at(t)
        np.testing.assert_allclose(traj.R[i], R, rtol=5 * t)          # error O(t²) of an O(t) term
        np.testing.assert_allclose(traj.W2[i], W2, rtol=20 * t)       # error O(t³) of an O(t²) term
        np.testing.assert_allclose(traj.f[i] - state.f, f - state.f, rtol=5 * t)
    with pytest.raises(TheoryError, match="W2\\(0\\) = 0"):
        early_expansion(*_state(K=2, M=2), eta)


def test_simulation_follows_the_corrected_eq_29_not_the_printed_one():
    """f(t) − f(0) of AFA simulated at D = 500 over t = 1 (16 seeds) equals the ODE's and the
    corrected slope's within 3 standard errors; the printed slope is > 8 standard errors off."""
    from rate_models.teacher_student import simulate

    state, teacher = _e1_state(ft=(1.2, -1.0), q_f=16.0)  # printed/corrected slope ≈ 0.35
    eta, D, t = 0.1, 500, 1.0
    sim = simulate(realize(state, teacher, D, seed=0), "afa", eta, [0, int(t * D)], range(16))
    df = sim.f[:, -1] - sim.f[:, 0]  # (seeds, K)
    mean, se = df.mean(0), df.std(0, ddof=1) / np.sqrt(df.shape[0])
    ode = integrate(state, teacher, eta, [0.0, t]).f[-1] - state.f
    corrected = early_expansion(state, teacher, eta).f_slope * t
    printed = (2 / np.pi) * eta * state.f / np.sqrt(1.5 * 17.0 - state.f ** 2) * (teacher.W2 @ teacher.f) * t
    assert np.all(np.abs(mean - ode) < 3 * se)
    assert np.all(np.abs(mean - corrected) < 3 * se + 0.05 * np.abs(corrected))  # O(t²) of the expansion
    assert np.all(np.abs(mean - printed) > 8 * se)


def test_eq_17_step_is_the_rate_backends_afa_rule_and_pepita_to_first_order():
    """One step of the simulation's AFA (eq. 17) equals rate_models' afa_updates (the Jacobian
    form of S eq. 11); PEPITA's step (pepita_updates, two passes) equals it to O(F)."""
    import torch

    from rate_models.rules.pepita import afa_updates
    from rate_models.teacher_student import _Student

    state, teacher = _state(K=2, M=2)
    w = realize(state, teacher, 30, seed=2)
    x = torch.randn(3, 1, 30, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = torch.randn(3, 1, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(1))

    def step(rule, w):
        s = _Student(w, 3, torch.float64)
        W1, W2 = s.W1.clone(), s.W2.clone()
        s.step(rule, x, y, 1.0)
        return W1 - s.W1, W2 - s.W2, s

    dW1, dW2, s = step("afa", w)
    s.W1 += dW1  # back to the initial weights
    s.W2 += dW2
    (ref1, _), (ref2, _) = afa_updates(s.forward, x, y, s.F, sign=-1.0)[0]
    torch.testing.assert_close(dW1, ref1, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(dW2, ref2, rtol=1e-12, atol=1e-14)
    for scale in (1e-2, 1e-3):
        small = type(w)(w.W1, w.W2, w.teacher_W1, w.teacher_W2, scale * w.F)
        a1, a2, _ = step("afa", small)
        p1, p2, _ = step("pepita", small)
        rel = float((p1 - a1).norm() / a1.norm())
        assert rel < 30 * scale, (scale, rel)
        assert float((p2 - a2).norm() / a2.norm()) < 30 * scale


def test_theory_matches_afa_simulation_at_moderate_D():
    """D = 200, η = 0.5, 4 seeds: the mean ε_g within 10% of theory pointwise after the
    transient (t ≥ 10), and the plateau escape within 20%."""
    from rate_models.teacher_student import simulate
    from neurosim.theory.experiment import _curves, record_steps

    state, teacher = initial_conditions("random", 2, 2, 200, seed=2, w2_std=1.0)
    D, eta = 200, 0.5
    steps = record_steps(100 * D, 25)
    t = steps / D
    th = integrate(state, teacher, eta, t).eps_g
    sim = simulate(realize(state, teacher, D, 0), "afa", eta, steps, range(4))
    mean = _curves(sim.Q, sim.R, sim.W2, sim.f, teacher)["eps_g"].mean(0)
    after = t >= 10
    dev = np.abs(mean - th)[after] / th[after]
    assert dev.max() < 0.10, dev
    p_th, p_sim = plateau(t, th, 10), plateau(t, mean, 10)
    assert p_th.escape_time is not None and p_sim.escape_time is not None
    assert abs(p_sim.escape_time / p_th.escape_time - 1) < 0.20


def test_plateau_and_escape_of_a_synthetic_curve():
    t = np.geomspace(0.1, 1e4, 400)
    eps = 0.05 + 0.4 * np.exp(-t / 5) - 0.05 / (1 + np.exp(-(np.log(t) - np.log(1000)) * 4))
    p = plateau(t, eps, 50)
    assert p.height == pytest.approx(0.05, rel=0.05)
    assert p.escape_time == pytest.approx(1000, rel=0.05)  # half the plateau at the logistic's middle
    assert plateau(t, np.full_like(t, 0.3), 50).escape_time is None


def test_non_positive_definite_and_blow_up_are_errors_naming_t():
    state, teacher = _e1_state()
    bad = Teacher(teacher.T, teacher.W2, teacher.f, 0.1)  # q_f < f̃·f̃ + f·Q⁻¹f
    with pytest.raises(TheoryError, match="not positive definite"):
        integrate(state, bad, 0.1, [0.0, 1.0])
    with pytest.raises(TheoryError, match="eta"):
        integrate(state, teacher, float("nan"), [0.0, 1.0])
    with pytest.raises(TheoryError, match=r"blew up at t = \d"):
        integrate(*_state(K=2, M=2), 5.0, [0.0, 100.0], blowup=1.2)  # |W₂| grows to 1.32
    with pytest.raises(TheoryError, match=r"failed at t = \d.*evaluations"):
        integrate(*_state(K=2, M=2), 400.0, [0.0, 100.0], max_evaluations=2000)


def test_neurosim_theory_imports_no_torch():
    code = ("import sys, neurosim.theory.afa, neurosim.theory.setting, neurosim.theory.experiment, "
            "neurosim.theory_cli; assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_theory_afa_writes_a_run_folder(tmp_path, capsys):
    from neurosim.cli import main

    out = tmp_path / "run"
    code = main(["theory", "afa", "--D", "40", "--eta", "0.5", "--t-max", "15", "--seeds", "2",
                 "--points", "12", "--out", str(out), "--quiet"])
    assert code == 0
    assert "run folder" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["simulations"]) == {"afa", "pepita"}
    for rule in ("afa", "pepita"):
        s = summary["simulations"][rule]
        assert {"plateau", "deviation_from_theory", "final_eps_g_mean", "escape_time_per_seed"} <= set(s)
    assert summary["theory"]["initial_eps_g"] > 0 and summary["eta_2"] == pytest.approx(0.5 / 40)
    header = (out / "metrics.csv").read_text().splitlines()[0].split(",")
    for col in ("t", "eps_g_theory", "eps_g_afa", "eps_g_pepita_std", "angle_W2_f_deg_theory",
                "angle_W2_teacher_deg_afa", "f_norm_pepita", "Q_1_2_theory", "deviation_afa"):
        assert col in header
    for png in ("learning_curves.png", "alignment.png"):
        assert (out / png).stat().st_size > 1000
    # the initial order parameters replay through --init-file: same theory curve
    init = tmp_path / "init.json"
    init.write_text(json.dumps(json.loads((out / "config.json").read_text())["initial_order_parameters"]))
    again = tmp_path / "again"
    assert main(["theory", "afa", "--D", "40", "--eta", "0.5", "--t-max", "15", "--seeds", "1", "--rules",
                 "afa", "--points", "12", "--init-file", str(init), "--out", str(again), "--quiet"]) == 0
    replay = json.loads((again / "summary.json").read_text())["theory"]
    assert replay["final_eps_g"] == pytest.approx(summary["theory"]["final_eps_g"], rel=1e-9)
    # an existing folder is never overwritten
    before = (out / "summary.json").read_text()
    assert main(["theory", "afa", "--D", "40", "--t-max", "1", "--out", str(out), "--quiet"]) == 2
    assert "error: --out" in capsys.readouterr().err
    assert (out / "summary.json").read_text() == before


@pytest.mark.parametrize("flags, named", [
    (["--K", "0"], "--K"), (["--M", "0"], "--M"), (["--D", "1"], "--D"), (["--D", "4"], "--D"),
    (["--eta", "0"], "--eta"), (["--eta", "-1"], "--eta"), (["--eta", "nan"], "--eta"),
    (["--eta", "inf"], "--eta"), (["--seeds", "0"], "--seeds"), (["--eta", "400"], "at t ="),
])
def test_cli_bad_input_is_one_error_line_and_no_folder(tmp_path, capsys, monkeypatch, flags, named):
    """Exit 2, one ``error:`` line naming the flag (or, for an ODE that fails, the time), and no
    run folder. The failing ODE is capped at 300 evaluations to keep the test fast."""
    import functools

    from neurosim import cli
    from neurosim.theory import experiment

    monkeypatch.setattr(experiment, "integrate", functools.partial(integrate, max_evaluations=300))
    out = tmp_path / "run"
    argv = ["theory", "afa", "--t-max", "100", "--D", "30", "--rules", "afa", "--out", str(out), "--quiet", *flags]
    try:
        code = cli.main(argv)
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    assert code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and named in errors[0], errors
    assert not any(tmp_path.iterdir())


def test_cli_non_positive_definite_init_file(tmp_path, capsys):
    from neurosim.cli import main

    init = tmp_path / "init.json"
    state, teacher = _e1_state()
    init.write_text(json.dumps({"Q": state.Q.tolist(), "R": state.R.tolist(), "W2": state.W2.tolist(),
                                "f": state.f.tolist(), "T": teacher.T.tolist(),
                                "teacher_W2": teacher.W2.tolist(), "teacher_f": teacher.f.tolist(),
                                "q_f": 0.1}))
    out = tmp_path / "run"
    assert main(["theory", "afa", "--D", "30", "--t-max", "1", "--init-file", str(init), "--out", str(out),
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "init_file" in err and "not positive definite" in err
    assert not out.exists()
