"""Samples per second of the 784-500-10 circuits, runtime vs cpp_standalone, and where the time goes.

Each rule's spiking circuit trains on ``--samples`` MNIST-shaped samples (real MNIST when
``--data-dir`` holds it, else uniform random pixels of the same shape) on both devices. The
table gives samples per second of simulation (runtime: after a first sample that compiles the
code objects; standalone: the compiled binary's run, without compilation), synaptic events per
sample (presynaptic spikes times fan-out, counted by spike
monitors), and, with ``--profile``, the code objects that take the most time (Brian2's profiler).
Profiling times every code object at every step, which costs as much as the smaller code objects
themselves: profiled, the binary trained 119 (DFA) and 56 (PEPITA) samples per CPU-second,
unprofiled 376 and 167 samples/s on a quiet machine (1,000 MNIST samples, one thread), so
throughput is timed without it and ``--profile`` is for the breakdown only.

    python benchmarks/circuit_throughput.py --rules pepita dfa --samples 2000 --threads 1 2

Beside them, the synaptic events per second one core delivers at best (dense row sums in numpy).

Where the time goes (``--profile``, PEPITA, 300 MNIST samples): delivering the input spikes to
the hidden layer (``input_hidden_pre_codeobject``) took 1.16 s of the 1.97 s of the eight
slowest code objects; the input
and hidden state updates, spike queues and the per-sample weight update share the rest. Each
event reads the synapse's weight and target; ``circuits.wiring.connect`` stores a presynaptic
neuron's synapses contiguously, so those reads run in sequence (created in postsynaptic-major
order they were a cache miss each: 276 M events/s, now 434 M).

Writes ``benchmarks/results/circuit_throughput.json``.
"""

from __future__ import annotations

import argparse
import platform
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
from brian2 import SpikeMonitor, get_device, prefs, profiling_summary, second, set_device

from circuits import build_circuit
from circuits.training import make_schedule, stimulus_namespace
from neurosim.circuit_params import CircuitParams
from neurosim.io import atomic_write_json

SIZES = [784, 500, 10]


def mnist_like(n: int, data_dir: str | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` MNIST training samples in [0, 1] (with the circuit's input baseline applied later),
    or random pixels of the same shape when MNIST is not found."""
    try:
        from neurosim.datasets import load_dataset

        d = load_dataset("mnist", data_dir, download=False)
        return d.x_train[:n].reshape(n, -1).astype(float), np.eye(10)[d.y_train[:n]]
    except (FileNotFoundError, ValueError):
        rng = np.random.default_rng(seed)
        return rng.uniform(0, 1, (n, 784)), np.eye(10)[rng.integers(0, 10, n)]


def one_core_event_rate(n_pre: int = 784, n_post: int = 500, spikes: int = 200_000) -> float:
    """Synaptic events per second one core delivers at best in this setting: each presynaptic
    spike adds its row of a dense ``(n_pre, n_post)`` float64 matrix to the postsynaptic
    potentials (numpy's vectorized gather-and-sum, no simulation around it)."""
    rng = np.random.default_rng(0)
    W = rng.normal(size=(n_pre, n_post))
    ids = rng.integers(0, n_pre, spikes)
    t0 = time.perf_counter()
    for chunk in np.array_split(ids, spikes // 16):  # ~16 spikes per time step, as in the circuit
        W[chunk].sum(0)
    return spikes * n_post / (time.perf_counter() - t0)


def measure(rule: str, device: str, x: np.ndarray, y: np.ndarray, threads: int = 1,
            profile: bool = False, show: int = 8) -> dict:
    """Train ``len(x)`` samples on ``device`` (``threads`` OpenMP threads on cpp_standalone) with
    the rule's default parameters; time, events and (``profile``) the ``show`` slowest code
    objects (Brian2 times each with ``omp_get_wtime`` under OpenMP, with ``std::clock`` without)."""
    params = CircuitParams.for_rule(rule, "spiking")
    b = params.input_baseline
    x = b + (1 - b) * x
    workdir = Path(tempfile.mkdtemp(prefix=f"circuit-bench-{rule}-"))
    if device == "cpp_standalone":
        set_device("cpp_standalone", directory=str(workdir), build_on_run=False)
        prefs.devices.cpp_standalone.openmp_threads = threads if threads > 1 else 0
    try:
        circuit = build_circuit(rule, SIZES, 0, params=params)
        monitors = [SpikeMonitor(g, record=False, name=f"count_{n}") for n, g in circuit.groups.items()]
        circuit.network.add(*monitors)
        schedule = make_schedule(len(x), 1, 1, len(x), 0)
        ns = stimulus_namespace(circuit, np.concatenate([x, x[:1]]), np.concatenate([y, y[:1]]),
                                schedule)
        sample = circuit.steps_per_sample * params.dt * second
        circuit.network.run(sample, namespace=ns, profile=profile)  # runtime: compiles, untimed
        t0 = time.perf_counter()
        circuit.network.run((len(schedule) - 1) * sample + params.dt * second, namespace=ns,
                            profile=profile)
        timed = len(schedule) - 1
        if device == "cpp_standalone":
            get_device().build(directory=str(workdir), compile=True, run=False)
            t0 = time.perf_counter()
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            get_device().run(directory=str(workdir), with_output=False)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            timed = len(schedule)  # the binary runs every sample
        elapsed = time.perf_counter() - t0
        cpu = ((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
               if device == "cpp_standalone" else float("nan"))
        fan_out = {}
        for syn in circuit.synapses.values():
            fan_out[syn.source.name] = fan_out.get(syn.source.name, 0) + len(syn) / len(syn.source)
        events = sum(int(m.num_spikes) * fan_out.get(m.source.name, 0) for m in monitors)
        top = []
        if profile:
            summary = profiling_summary(circuit.network, show=show)
            top = [(name.strip(), float(t / second)) for name, t in zip(summary.names, summary.times)]
    finally:
        if device == "cpp_standalone":
            prefs.devices.cpp_standalone.openmp_threads = 0
            get_device().reinit()
            set_device("runtime")
    return {"rule": rule, "device": device, "threads": threads, "samples_timed": timed,
            "seconds": elapsed, "samples_per_second": timed / elapsed,
            # the compiled binary's CPU time: what a loaded machine does not inflate as much
            "cpu_seconds": cpu, "samples_per_cpu_second": timed / cpu,
            "synaptic_events_per_sample": events / len(schedule),
            "synaptic_events_per_second": events / len(schedule) * timed / elapsed,
            "input_baseline": b, "profiled": profile, "top_code_objects_s": top}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rules", nargs="+", default=["pepita", "dfa", "drtp", "pfa"])
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--data-dir")
    ap.add_argument("--devices", nargs="+", default=["cpp_standalone"],
                    choices=["runtime", "cpp_standalone"])
    ap.add_argument("--threads", nargs="+", type=int, default=[1],
                    help="OpenMP thread counts to time on cpp_standalone")
    ap.add_argument("--profile", action="store_true",
                    help="also time every code object (slows the run: for the breakdown only)")
    ap.add_argument("--top", type=int, default=8, help="code objects listed with --profile")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "circuit_throughput.json"))
    args = ap.parse_args()
    x, y = mnist_like(args.samples, args.data_dir, 0)
    rows = []
    core = one_core_event_rate()
    print(f"one core, dense row sums: {core / 1e6:.0f} M synaptic events/s")
    for rule in args.rules:
        for device in args.devices:
            for threads in args.threads if device == "cpp_standalone" else [1]:
                row = measure(rule, device, x, y, threads, args.profile, args.top)
                rows.append(row)
                top = ", ".join(f"{n} {t:.2f}s" for n, t in row["top_code_objects_s"])
                print(f"{rule:<20} {device:<15} {threads} thr {row['samples_per_second']:8.1f} "
                      f"samples/s {row['samples_per_cpu_second']:8.1f} samples/CPU-s {row['synaptic_events_per_sample']:10.0f} events/sample "
                      f"{row['synaptic_events_per_second'] / 1e6:6.1f} M events/s  top: {top}",
                      flush=True)
    atomic_write_json(args.out, {"machine": platform.processor() or platform.machine(),
                                 "sizes": SIZES, "one_core_events_per_second": core,
                                 "rows": rows})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
