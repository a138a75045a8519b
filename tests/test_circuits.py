"""The Brian2 circuits against the rate rules, their wiring, their traces and their bad input.

Small circuits on Brian2's numpy code generation (no compilation). The oracle of every circuit
is the rate backend's rule with the same weights and feedback (``circuits.compare``).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("brian2")
from brian2 import StateMonitor  # noqa: E402

from circuits import CIRCUITS, build_circuit  # noqa: E402
from circuits.compare import rate_updates  # noqa: E402
from circuits.training import (Schedule, add_readout, make_schedule, run_schedule,  # noqa: E402
                               sample_updates, stimulus_namespace)
from neurosim.circuit_params import CircuitParams  # noqa: E402
from neurosim.rules import rules_with  # noqa: E402

SIZES = [8, 6, 4]


pytestmark = pytest.mark.usefixtures("numpy_codegen")


def _data(n=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1, (n, SIZES[0])), np.eye(SIZES[-1])[rng.integers(0, SIZES[-1], n)]


def _probe_schedule(n: int, train: bool) -> Schedule:
    return Schedule(np.arange(n), np.full(n, train), np.zeros(n, int), [n])


def test_registry_matches_circuits():
    assert sorted(CIRCUITS) == sorted(rules_with("circuit"))


@pytest.mark.parametrize("activation", ["relu", "clipped-relu"])
@pytest.mark.parametrize("rule", sorted(CIRCUITS))
def test_rate_mode_training_step_equals_rate_rule(rule, activation):
    """One training sample in rate mode changes every plastic matrix by exactly the rate rule's
    update -eta dW (float64 round-off), with either hidden activation; the sample drives some
    hidden neurons above 1, where the clipped one saturates, and some below 0."""
    x, y = _data(1)
    c = build_circuit(rule, SIZES, seed=3,
                      params=CircuitParams.for_mode("rate", hidden_activation=activation))
    a1 = c.initial["W1"] @ x[0]
    assert (a1 > 1).any() and (a1 < 0).any()
    run_schedule(c, stimulus_namespace(c, x, y, _probe_schedule(1, True)), 1)
    ref = rate_updates(rule, SIZES, c.params, 3, c.initial, x, y)
    for name in c.plastic:
        after = c.matrix(name)
        if name == "R":  # +R from the positive half of ebar, -R from the negative half
            half = after.shape[1] // 2
            np.testing.assert_allclose(after[:, half:], -after[:, :half], rtol=0, atol=1e-15)
            after = after[:, :half]
        change = after - c.initial[name]
        assert np.abs(ref[name][0]).max() > 1e-5, f"{rule} {name}: the reference update is trivial"
        np.testing.assert_allclose(change, ref[name][0], rtol=0, atol=1e-13)


def test_clipped_hidden_neurons_fire_at_most_rate_max():
    """Spiking mode, drive of several rate_max: ReLU somata follow it, clipped-ReLU somata fire at
    most rate_max (a window of rate_max·t_window = 8 spikes holds at most 9: r1 <= 9/8). The soma
    integrates the capped drive min(v_b, 1), so a fluctuating drive fires below min(vbar, 1)."""
    from brian2 import second

    from circuits.training import read_samples

    x, y = _data(1)
    rates = {}
    for activation in ("relu", "clipped-relu"):
        c = build_circuit("dfa", SIZES, seed=3, params=CircuitParams.for_mode(
            "spiking", hidden_activation=activation))
        c.synapses[c.plastic["W1"]].w[:] *= 10  # mean basal potentials up to ~10
        mon = StateMonitor(c.groups["hidden"], ["r1", "vbar1"], record=True,
                           dt=c.sample_duration * second, when="start", order=-10)
        c.network.add(mon)
        run_schedule(c, stimulus_namespace(c, x, y, _probe_schedule(1, False)), 1)
        rates[activation] = read_samples(mon, "r1")[0], read_samples(mon, "vbar1")[0]
    r, vbar = rates["relu"]
    assert vbar.max() > 3 and r.max() > 3
    r, vbar = rates["clipped-relu"]
    assert r.max() <= 9 / 8 + 1e-12
    assert (r[vbar > 2] > 0).all()


@pytest.mark.parametrize("rule", ["pepita", "pfa"])
def test_recorded_factors_rebuild_each_samples_update(rule):
    """With learning off, the recorded window means give each sample's rate-rule update."""
    x, y = _data(3, seed=1)
    c = build_circuit(rule, SIZES, seed=0, mode="rate")
    monitors = add_readout(c, factors=True)
    run_schedule(c, stimulus_namespace(c, x, y, _probe_schedule(3, False)), 3)
    ups = sample_updates(c, monitors)
    ref = rate_updates(rule, SIZES, c.params, 0, c.initial, x, y)
    for name in c.plastic:
        np.testing.assert_allclose(ups[name], ref[name], rtol=0, atol=1e-13)
        np.testing.assert_array_equal(c.matrix("W1"), c.initial["W1"])  # learning was off


def test_pepita_soma_holds_phase_one_through_phase_two():
    """The somatic store r1 reaches the phase-1 rate by the end of window 1 and stays constant
    through phase 2, while the dendrite's r2 integrates the modulated response."""
    x, y = _data(1)
    params = CircuitParams.for_mode("spiking", t_settle=5e-3, t_window=10e-3)
    c = build_circuit("pepita", SIZES, seed=0, params=params)
    mon = StateMonitor(c.groups["hidden"], ["r1", "r2", "phase2"], record=True)
    c.network.add(mon)
    run_schedule(c, stimulus_namespace(c, x * 0 + 1, y, _probe_schedule(1, False)), 1,
                 extra_step=False)
    phase2 = mon.phase2[0] > 0
    r1 = mon.r1[:, phase2]
    assert np.all(r1 == r1[:, :1]), "r1 changed during phase 2"
    assert r1.max() > 0, "no hidden neuron fired in phase 1"
    assert np.all(mon.r2[:, ~phase2] == 0) and mon.r2[:, phase2].max() > 0


def _pairs(circuit) -> set[tuple[str, int, str, int]]:
    edges = set()
    for syn in circuit.synapses.values():
        for i, j in zip(syn.i[:], syn.j[:]):
            edges.add((syn.source.name, int(i), syn.target.name, int(j)))
    return edges


def test_drtp_has_no_path_from_output_or_error_to_hidden():
    c = build_circuit("drtp", SIZES, mode="rate")
    into_hidden = {s.source.name for s in c.synapses.values() if s.target.name == "hidden"}
    assert into_hidden == {"input", "label"}
    assert "error" not in c.groups


def test_pfa_has_no_reciprocal_pair_and_fa_has_all():
    pfa = _pairs(build_circuit("pfa", SIZES, mode="rate"))
    assert not [e for e in pfa if (e[2], e[3], e[0], e[1]) in pfa]
    fa = _pairs(build_circuit("fa", SIZES, mode="rate"))
    forward = [e for e in fa if e[0] == "hidden" and e[2] == "output"]
    assert len(forward) == SIZES[1] * SIZES[2]
    assert all((e[2], e[3], e[0], e[1]) in fa for e in forward)


@pytest.mark.parametrize("changes, message", [
    ({"dt": 5e-3}, "smaller than the fastest time constant"),
    ({"tau_syn": -1e-3}, "--tau-syn must be a finite positive number"),
    ({"t_window": 0.0}, "--t-window must be a finite positive number"),
    ({"t_window": 2e-3}, "lengthen --t-window"),
    ({"eta_hidden": float("nan")}, "--eta-hidden must be a finite number >= 0"),
    ({"eta_output": -0.1}, "--eta-output must be a finite number >= 0"),
    ({"eta_decay": 0.0}, r"--eta-decay must be in \(0, 1\]"),
    ({"eta_decay": 1.5}, r"--eta-decay must be in \(0, 1\]"),
    ({"t_settle": 1.25e-3}, "whole number"),
    ({"rate_max": 5000.0}, "below 1"),
])
def test_bad_parameters_are_clear_errors(changes, message):
    with pytest.raises(ValueError, match=message):
        CircuitParams.for_mode("spiking", **changes).validate()


def test_unknown_rule_and_bad_sizes():
    with pytest.raises(ValueError, match="unknown circuit rule 'bp'"):
        build_circuit("bp", SIZES)
    with pytest.raises(ValueError, match="one hidden layer"):
        build_circuit("dfa", [8, 6, 6, 4])


def test_schedule_interleaves_training_and_tests():
    s = make_schedule(5, 2, epochs=2, eval_every=4, seed=0)
    assert s.seen == [4, 8, 10]
    assert len(s) == 10 + 3 * 2
    assert sorted(s.rows[s.train][:5]) == list(range(5))
    assert set(s.rows[~s.train]) == {5, 6}
    assert s.epoch[s.train].tolist() == [0] * 5 + [1] * 5


@pytest.mark.parametrize("rule", ["dfa", "pfa"])
def test_eta_decay_scales_each_later_epochs_update(rule):
    """Rate mode, one sample shown in two epochs: the first update does not depend on
    ``eta_decay``, and the second is ``eta_decay`` times the undecayed one from the same weights."""
    x, y = _data(1)

    def trained(epochs, decay):
        c = build_circuit(rule, SIZES, seed=3, params=CircuitParams.for_mode("rate", eta_decay=decay))
        s = make_schedule(1, 1, epochs=epochs, eval_every=1, seed=0)
        run_schedule(c, stimulus_namespace(c, np.concatenate([x, x]), np.concatenate([y, y]), s), len(s))
        return {m: c.matrix(m) for m in c.plastic}

    first, plain, decayed = trained(1, 1.0), trained(2, 1.0), trained(2, 0.25)
    for m in first:
        second = plain[m] - first[m]
        assert np.abs(second).max() > 1e-5, f"{rule} {m}: the second update is trivial"
        np.testing.assert_allclose(decayed[m] - first[m], 0.25 * second, rtol=0, atol=1e-13)


def test_cli_writes_the_run_folder(tmp_path):
    from neurosim.cli import main

    out = tmp_path / "run"
    assert main(["circuit", "--rule", "pfa", "--mode", "rate", "--train-samples", "40",
                 "--test-samples", "20", "--probe", "5", "--out", str(out), "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    # digits defaults to 32 hidden neurons (DEFAULT_HIDDEN)
    assert summary["rule"] == "pfa" and summary["mode"] == "rate" and summary["sizes"] == [64, 32, 10]
    assert 0 <= summary["test_accuracy"] <= 100 and summary["samples_per_second"] > 0
    assert summary["update_angle_deg"] < 1e-4  # rate mode: the rate rule's update
    for name in ("learning_curve.png", "update_scatter.png", "compartments.png", "metrics.csv"):
        assert (out / name).is_file()


def test_cli_rejects_more_samples_than_the_data_set(tmp_path, capsys):
    from neurosim.cli import main

    assert main(["circuit", "--rule", "dfa", "--train-samples", "5000", "--out", str(tmp_path)]) == 2
    assert "digits has 1437 such samples" in capsys.readouterr().err


@pytest.mark.slow
def test_spiking_circuit_on_cpp_standalone_learns_digits(tmp_path):
    """The compiled spiking DFA circuit learns above chance (10%) on digits within 2 epochs."""
    from circuits.experiment import run_experiment

    summary = run_experiment("dfa", "digits", hidden=64, epochs=2,
                             params=CircuitParams.for_mode("spiking"), device="cpp_standalone",
                             out=tmp_path / "run", probe=10, progress=False)
    assert summary["test_accuracy"] > 40.0
    assert (tmp_path / "run" / "raster.png").is_file()


def test_update_angle_undefined_for_a_matrix_that_does_not_learn():
    from circuits.experiment import _angles

    rng = np.random.default_rng(0)
    live = rng.normal(size=(3, 4, 5))
    angles = _angles({"W1": np.zeros((3, 4, 5)), "W2": live}, {"W1": live, "W2": live})
    assert angles["W1"] == {"summed_deg": None, "per_sample_mean_deg": None, "norm_ratio": None}
    assert angles["W2"]["summed_deg"] < 1e-5 and abs(angles["W2"]["norm_ratio"] - 1) < 1e-12


def test_spiking_experiment_is_reproducible():
    """The experiment seeds Brian2's random numbers: two runs give the same spikes and results."""
    from circuits.experiment import run_experiment

    runs = [run_experiment("dfa", "digits", hidden=16, train_samples=30, test_samples=20, epochs=1,
                           progress=False, probe=5) for _ in range(2)]
    assert runs[0]["test_accuracy"] == runs[1]["test_accuracy"]
    assert runs[0]["update_angles"] == runs[1]["update_angles"]


@pytest.mark.parametrize("rule", sorted(CIRCUITS))
def test_hidden_learning_is_not_ignored_and_the_control_freezes_it(rule):
    """Spiking mode, two training samples: every plastic matrix changes; with the hidden matrices
    frozen (the control) W1 and PFA's R stay exactly at their initial values and W2 still learns."""
    from circuits.wiring import HIDDEN_MATRICES

    x, y = _data(2, seed=2)
    for frozen in ((), HIDDEN_MATRICES):
        c = build_circuit(rule, SIZES, seed=1, params=CircuitParams.for_mode("spiking", eta_hidden=0.5,
                                                                             eta_feedback=0.5))
        run_schedule(c, stimulus_namespace(c, x, y, _probe_schedule(2, True), frozen), 2)
        for name in c.plastic:
            after = c.matrix(name)
            if name == "R":
                after = after[:, : after.shape[1] // 2]
            changed = not np.array_equal(after, c.initial[name])
            assert changed == (name not in frozen), f"{rule} {name} frozen={frozen}: changed={changed}"


# measured (seed 0): DFA 55.00% against a control of 34.44% (+20.56 points) at its defaults;
# PEPITA 38.61% against 31.39% (+7.22) at eta_hidden 1e-2 (+2.50 at its default 3e-3)
MIN_GAIN_8_HIDDEN = {"dfa": 5.0, "pepita": 5.0}
# Changes from the rule's defaults. Eight hidden neurons need a faster PEPITA rate than 256 do: on
# this task the rate-mode circuit (the rate rule) gains +15.00 points at eta_hidden 1e-2 and +3.89
# at the default 3e-3.
CHANGES_8_HIDDEN = {"dfa": {}, "pepita": {"eta_hidden": 1e-2}}


@pytest.mark.slow
@pytest.mark.parametrize("rule", ["dfa", "pepita"])
def test_spiking_hidden_learning_beats_its_frozen_control(rule, tmp_path):
    """Digits through 8 hidden neurons: fixed random features classify them poorly, so the
    spiking circuit must beat its frozen-hidden control (same seed, samples, schedule; one
    compiled binary run twice) by a clear margin."""
    from circuits.experiment import run_experiment

    params = CircuitParams.for_rule(rule, "spiking", **CHANGES_8_HIDDEN[rule])
    summary = run_experiment(rule, "digits", hidden=8, epochs=3, params=params,
                             out=tmp_path / "run", probe=5, progress=False, control=True)
    assert summary["hidden_gain"] > MIN_GAIN_8_HIDDEN[rule], summary
    assert summary["hidden_gain"] == summary["test_accuracy"] - summary["control_test_accuracy"]
