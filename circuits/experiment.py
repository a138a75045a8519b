"""One circuit experiment: train sample by sample, test, compare with the rate rule, write a run folder.

The schedule of one experiment (all in one simulation, see ``circuits.training``):

1. ``probe`` samples with learning off at the initial weights: the factors of every plastic
   projection are recorded, spikes and a few hidden neurons' compartments too (for the plots);
2. training samples (learning on) with the test set after every ``eval_every`` of them;
3. the same ``probe`` samples again with learning off, at the trained weights.

The probes give each sample's circuit update ``eta post pre^T``; the rate rule's update at the
same weights (``circuits.compare``) gives the reference. ``update_angle_deg`` is the angle
between the two updates of ``W_1`` summed over the probe samples at the initial weights (the
expectation the spiking circuit is meant to match); the per-sample mean angle and the angles at
the trained weights are reported beside it.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from brian2 import SpikeMonitor, StateMonitor, get_device, prefs, seed as brian_seed, set_device

from circuits import CIRCUITS, build_circuit
from circuits.compare import rate_updates
from circuits.training import (Schedule, add_readout, make_schedule, read_samples, run_schedule,
                               sample_updates, stimulus_namespace)
from circuits.wiring import HIDDEN_MATRICES
from neurosim.circuit_params import CircuitParams
from neurosim.datasets import load_dataset
from neurosim.io import atomic_write_json, write_csv_rows
from neurosim.metrics import angle_deg

DEVICES = ("runtime", "cpp_standalone")
TRACE_VARIABLES = ["u", "v_b", "v_a", "r1", "r2"]


def load_circuit_data(dataset: str, data_dir, train_samples: int | None, test_samples: int | None,
                      seed: int):
    """Flattened inputs in [0, 1] and one-hot targets: ``(x_train, y_train, x_test, y_test)``."""
    data = load_dataset(dataset, data_dir, seed=seed)
    if data.task != "classification":
        raise ValueError(f"circuits classify; {dataset!r} is a {data.task} data set")
    n_tr = len(data.x_train) if train_samples is None else train_samples
    n_te = len(data.x_test) if test_samples is None else test_samples
    for name, n, have in (("--train-samples", n_tr, len(data.x_train)),
                          ("--test-samples", n_te, len(data.x_test))):
        if not 1 <= n <= have:
            raise ValueError(f"{name} {n}: {dataset} has {have} such samples; choose 1..{have}")
    eye = np.eye(data.n_classes)
    x_tr = data.x_train[:n_tr].reshape(n_tr, -1).astype(float)
    x_te = data.x_test[:n_te].reshape(n_te, -1).astype(float)
    if x_tr.min() < 0 or x_tr.max() > 1:
        raise ValueError(f"{dataset}: circuit inputs must lie in [0, 1] (they are firing rates)")
    return x_tr, eye[data.y_train[:n_tr]], x_te, eye[data.y_test[:n_te]]


@contextmanager
def brian_device(name: str, directory: Path, threads: int | None = None):
    """Run the enclosed build and simulation on ``name``; standalone code goes to ``directory``
    and runs on ``threads`` OpenMP threads (default 1: no OpenMP)."""
    if name not in DEVICES:
        raise ValueError(f"unknown device {name!r}; choose 'runtime' or 'cpp_standalone'")
    if name == "runtime":
        yield
        return
    threads = 1 if threads is None else threads
    set_device("cpp_standalone", directory=str(directory), build_on_run=False)
    prefs.devices.cpp_standalone.extra_make_args_unix = [f"-j{os.cpu_count() or 1}"]  # not unbounded
    prefs.devices.cpp_standalone.openmp_threads = threads if threads > 1 else 0
    try:
        yield
    finally:
        prefs.devices.cpp_standalone.openmp_threads = 0
        get_device().reinit()
        set_device("runtime")


def _probe_monitors(circuit, spiking: bool) -> list:
    """Spike monitors of every group and compartment traces of three hidden neurons."""
    mons = [StateMonitor(circuit.groups["hidden"], TRACE_VARIABLES if spiking else
                         [v for v in TRACE_VARIABLES if v != "u"], record=[0, 1, 2], name="traces")]
    if spiking:
        mons += [SpikeMonitor(g, name=f"spikes_{name}") for name, g in circuit.groups.items()]
    circuit.network.add(*mons)
    return mons


def _angles(circuit_updates: dict, rate: dict) -> dict:
    """Per plastic matrix: angle of the summed updates, mean per-sample angle, norm ratio;
    ``None`` throughout for a matrix whose updates are all zero (a learning rate of 0)."""
    out = {}
    nonzero = lambda u: np.linalg.norm(u) > 0  # noqa: E731  (a norm can underflow where np.any does not)
    for m in circuit_updates:
        a, b = circuit_updates[m], rate[m]
        if not (nonzero(a.sum(0)) and nonzero(b.sum(0))):
            out[m] = {"summed_deg": None, "per_sample_mean_deg": None, "norm_ratio": None}
            continue
        per_sample = [angle_deg(a[k], b[k]) for k in range(len(a)) if nonzero(a[k]) and nonzero(b[k])]
        out[m] = {"summed_deg": angle_deg(a.sum(0), b.sum(0)),
                  "per_sample_mean_deg": float(np.mean(per_sample)) if per_sample else None,
                  "norm_ratio": float(np.linalg.norm(a.sum(0)) / np.linalg.norm(b.sum(0)))}
    return out


def run_experiment(rule: str, dataset: str = "digits", data_dir=None, hidden: int = 256,
                   train_samples: int | None = None, test_samples: int | None = None,
                   epochs: int = 1, params: CircuitParams | None = None,
                   device: str = "cpp_standalone", seed: int = 0, out: Path | None = None,
                   eval_every: int | None = None, probe: int = 50, progress: bool = True,
                   control: bool = False, freeze_hidden: bool = False,
                   threads: int | None = None) -> dict:
    """Train and test the ``rule`` circuit; return the summary (and write the run folder to ``out``).

    ``freeze_hidden``: the hidden weights (and PFA's ``R``) stay fixed, only the readout ``W2``
    learns. ``control``: after the run, the same circuit (same seed, samples, schedule and input
    spikes until the weights differ) is run again frozen-hidden; the summary gets
    ``control_test_accuracy`` and ``hidden_gain`` (accuracy minus control, in points). On
    ``cpp_standalone`` the control re-runs the compiled binary with the hidden learning gates set
    to zero (Brian2's ``run_args``), without compiling again."""
    if rule not in CIRCUITS:
        raise ValueError(f"unknown circuit rule {rule!r}; choose one of: {', '.join(CIRCUITS)}")
    params = params or CircuitParams.for_rule(rule, "spiking")
    params.validate()
    if epochs < 1 or hidden < 1 or probe < 1:
        raise ValueError("epochs, hidden and probe must be >= 1")
    check_control(control, freeze_hidden, params)
    x_tr, y_tr, x_te, y_te = load_circuit_data(dataset, data_dir, train_samples, test_samples, seed)
    b = params.input_baseline  # spontaneous activity keeps PEPITA's x + F e a positive rate
    x_tr, x_te = b + (1 - b) * x_tr, b + (1 - b) * x_te
    sizes = [x_tr.shape[1], hidden, y_tr.shape[1]]
    probe = min(probe, len(x_tr))
    main = make_schedule(len(x_tr), len(x_te), epochs, eval_every or len(x_tr), seed)
    probe_rows = np.arange(probe)
    schedule = Schedule(np.concatenate([probe_rows, main.rows, probe_rows]),
                        np.concatenate([np.zeros(probe, bool), main.train, np.zeros(probe, bool)]),
                        np.concatenate([np.full(probe, -1), main.segment, np.full(probe, -1)]),
                        main.seen,
                        np.concatenate([np.zeros(probe, int), main.epoch, np.full(probe, epochs - 1)]))
    x, y = np.concatenate([x_tr, x_te]), np.concatenate([y_tr, y_te])
    out = Path(out) if out else None
    spiking = params.mode == "spiking"
    workdir = (out or Path("runs") / "circuit-build") / "standalone"
    with brian_device(device, workdir, threads):
        brian_seed(seed)  # Poisson inputs, initial potentials: the same spikes on every run
        circuit = build_circuit(rule, sizes, seed, params=params)
        readout = add_readout(circuit, factors=True)
        probes = _probe_monitors(circuit, spiking)
        ns = stimulus_namespace(circuit, x, y, schedule, HIDDEN_MATRICES if freeze_hidden else ())
        if control and device == "runtime":
            circuit.network.store("initial")
        elapsed = _simulate(circuit, ns, probes, len(main), probe, device, workdir, progress)
        result = _collect(circuit, readout, probes, schedule, main, x, y, probe, seed)
        if control:
            frozen = stimulus_namespace(circuit, x, y, schedule, HIDDEN_MATRICES)
            if device == "cpp_standalone":
                gates = {ns[f"learn_{m}"]: 0.0 for m in HIDDEN_MATRICES if m in circuit.plastic}
                get_device().run(directory=str(workdir), with_output=False, run_args=gates)
            else:
                circuit.network.restore("initial")
                brian_seed(seed)
                _simulate(circuit, frozen, [], len(main), probe, device, workdir, progress)
            control_curve = _curve(readout, schedule, main, y, probe)
            for row, ctrl in zip(result["curve"], control_curve):
                row["control_test_accuracy"] = ctrl["test_accuracy"]
    summary = {
        "rule": rule, "mode": params.mode, "device": device, "dataset": dataset, "sizes": sizes,
        "epochs": epochs, "train_samples": len(x_tr), "test_samples": len(x_te), "seed": seed,
        "freeze_hidden": freeze_hidden,
        "test_accuracy": result["curve"][-1]["test_accuracy"],
        # every simulated presentation (training, test and probe samples) per second of simulation
        "samples_per_second": len(schedule) / elapsed,
        "update_angle_deg": result["angles"]["initial"]["W1"]["summed_deg"],
        "update_angles": result["angles"], "probe_samples": probe,
        "params": params.to_dict(), "rate_rule": CIRCUITS[rule].rate_rule,
    }
    if control:
        summary["control_test_accuracy"] = result["curve"][-1]["control_test_accuracy"]
        summary["hidden_gain"] = summary["test_accuracy"] - summary["control_test_accuracy"]
    if out:
        _write_run(out, summary, result, circuit, spiking)
    return summary


def check_control(control: bool, freeze_hidden: bool, params: CircuitParams) -> None:
    """Refuse a control that cannot differ from its run, naming the flags."""
    if control and freeze_hidden:
        raise ValueError("--control runs the frozen-hidden control beside the full circuit; with "
                         "--freeze-hidden the run is the control already: drop one of the two")
    if control and params.eta_hidden == 0 and params.eta_feedback == 0:
        raise ValueError("--control with --eta-hidden 0: the hidden layer does not learn, so the "
                         "control equals the run; give a positive --eta-hidden or drop --control")


def _simulate(circuit, ns: dict, probes: list, n_main: int, probe: int, device: str,
              workdir: Path, progress: bool) -> float:
    """Probe, train and test, probe again; return the seconds of simulation (on
    ``cpp_standalone``: of the compiled binary's run, compilation excluded)."""
    t0 = time.perf_counter()
    run_schedule(circuit, ns, probe, extra_step=False)
    for mon in probes:
        mon.active = False
    run_schedule(circuit, ns, n_main, progress=progress, extra_step=False)
    run_schedule(circuit, ns, probe)
    if device == "cpp_standalone":
        get_device().build(directory=str(workdir), compile=True, run=False)
        t0 = time.perf_counter()
        get_device().run(directory=str(workdir), with_output=False, run_args=[])
    return time.perf_counter() - t0


def probe_updates(rule: str, x: np.ndarray, y: np.ndarray, hidden: int = 256,
                  params: CircuitParams | None = None, seed: int = 0) -> tuple[dict, object]:
    """The circuit's update ``-eta dW`` of every plastic matrix for each sample of ``x`` (in [0, 1],
    shown as ``b + (1 - b) x``) at its initial weights, learning off: ``({"W1": (n, N_1, N_0),
    ...}, circuit)``. Runs on the current Brian2 device (runtime)."""
    params = params or CircuitParams.for_rule(rule, "spiking")
    params.validate()
    b = params.input_baseline
    n = len(x)
    brian_seed(seed)
    circuit = build_circuit(rule, [x.shape[1], hidden, y.shape[1]], seed, params=params)
    readout = add_readout(circuit, factors=True)
    schedule = Schedule(np.arange(n), np.zeros(n, bool), np.full(n, -1), [])
    run_schedule(circuit, stimulus_namespace(circuit, b + (1 - b) * x, y, schedule), n)
    return sample_updates(circuit, readout), circuit


def _curve(readout, schedule: Schedule, main: Schedule, y: np.ndarray, probe: int) -> list[dict]:
    """Test and online training accuracy after each training chunk, from the readout."""
    v = read_samples(readout["output"], "vbar")
    correct = v.argmax(1) == y[schedule.rows].argmax(1)
    body = correct[probe:probe + len(main)]
    curve = []
    for b, seen in enumerate(main.seen):
        here = main.segment == b
        curve.append({"train_samples_seen": seen,
                      "test_accuracy": 100.0 * body[here & ~main.train].mean(),
                      "online_train_accuracy": 100.0 * body[here & main.train].mean()})
    return curve


def _collect(circuit, readout, probes, schedule, main, x, y, probe, seed) -> dict:
    """Accuracies, the learning curve, and the probe updates against the rate rule."""
    curve = _curve(readout, schedule, main, y, probe)
    final = {m: (circuit.matrix(m)[:, : circuit.matrix(m).shape[1] // 2] if m == "R" else circuit.matrix(m))
             for m in circuit.plastic}
    angles, scatter = {}, {}
    for name, weights, rows in (("initial", circuit.initial, slice(0, probe)),
                                ("trained", final, slice(len(schedule) - probe, len(schedule)))):
        circ = sample_updates(circuit, readout, rows)
        rate = rate_updates(circuit.rule, circuit.sizes, circuit.params, seed, weights,
                            x[schedule.rows[rows]], y[schedule.rows[rows]])
        angles[name] = _angles(circ, rate)
        if name == "initial":
            scatter = {"circuit": circ["W1"].sum(0), "rate": rate["W1"].sum(0)}
    traces, *spikes = probes
    return {"curve": curve, "angles": angles, "scatter": scatter,
            "traces": {"t": np.asarray(traces.t[:]),
                       **{v: np.asarray(getattr(traces, v)[0]) for v in traces.record_variables}},
            "spikes": {m.source.name: (np.asarray(m.t[:]), np.asarray(m.i[:]), len(m.source))
                       for m in spikes}}


def _write_run(out: Path, summary: dict, result: dict, circuit, spiking: bool) -> None:
    from circuits.plots import (plot_circuit_learning_curve, plot_compartments, plot_raster,
                                plot_update_scatter)

    out.mkdir(parents=True, exist_ok=True)
    write_csv_rows(out / "metrics.csv", result["curve"])
    plots = [plot_circuit_learning_curve(result["curve"], out / "learning_curve.png", summary),
             plot_update_scatter(result["scatter"]["circuit"], result["scatter"]["rate"],
                                 out / "update_scatter.png", summary),
             plot_compartments(result["traces"], circuit, out / "compartments.png")]
    if spiking:
        plots.append(plot_raster(result["spikes"], circuit, out / "raster.png"))
    summary["plots"] = [p.name for p in plots]
    atomic_write_json(out / "summary.json", summary)
