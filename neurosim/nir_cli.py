"""``neurosim export`` (a trained LIF run to a NIR file) and ``neurosim nir-run`` (a NIR graph
simulated in Brian2 on a test set); torch, nir and brian2 are imported only when they run."""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

NIR_DATASETS = ("digits", "mnist", "fashion-mnist")


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a{'n integer' if kind is int else ' number'}") from None
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value
    return parse


def add_nir_parsers(sub) -> None:
    """Register ``neurosim export`` and ``neurosim nir-run`` on the CLI's subparsers."""
    p = sub.add_parser(
        "export", help="write a trained --neuron lif run as a NIR graph",
        description="Export one seed of a trained --neuron lif run folder (fully connected) as a "
                    "NIR graph: Linear weights, LIF hidden layers, an LI readout. The step dt, "
                    "num_steps, the subtract reset and the encoder go into the graph's metadata.")
    p.add_argument("run", help="run folder written by 'neurosim train --neuron lif'")
    p.add_argument("--format", choices=["nir"], default="nir", help="file format (nir)")
    p.add_argument("--out", required=True, help="the .nir file to write")
    p.add_argument("--seed", type=int, help="which seed's checkpoint (default the run's first)")
    p.add_argument("--dt", type=_positive(float), help="step in seconds the time constants refer to "
                   "(default the run's dt; 1e-4 is snnTorch's importer's step)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.set_defaults(func=cmd_export)

    r = sub.add_parser(
        "nir-run", help="simulate a NIR graph in Brian2 on a test set and report its accuracy",
        description="Build a Brian2 network from a NIR graph (a chain of Linear/Affine/Conv2d/"
                    "pooling/Flatten maps and LIF/CubaLIF/IF/LI/I layers), present the test "
                    "samples one after another and report the accuracy. Writes nothing unless --out.")
    a = r.add_argument
    a("file", help="a .nir file")
    a("--dataset", required=True, choices=NIR_DATASETS)
    a("--data-dir", help="folder holding the data set files")
    a("--test-samples", type=_positive(int), help="first N test samples (default all)")
    a("--device", choices=["runtime", "cpp_standalone"], default="runtime",
      help="Brian2 device (default runtime; cpp_standalone compiles the run to C++)")
    a("--threads", type=_positive(int), help="OpenMP threads of cpp_standalone (default 1)")
    a("--dt", type=_positive(float), help="step in seconds (default the graph's metadata)")
    a("--num-steps", type=_positive(int), help="steps per sample (default the graph's metadata)")
    a("--encoder", choices=["current", "rate"], help="input encoder (default the metadata's, else current)")
    a("--input-baseline", type=float, help="show intensity x as b + (1-b) x (default the metadata's, else 0)")
    a("--seed", type=int, default=0, help="seed of the rate encoder's spikes")
    a("--compare-lif", action="store_true",
      help="also load the graph into the LIF mode (rate_models.spiking), evaluate the same samples "
           "and compare accuracies and, with the current encoder, spike counts")
    a("--out", help="write the figures to this JSON file")
    a("--overwrite", action="store_true", help="replace --out if it exists")
    r.set_defaults(func=cmd_nir_run)


def _free(out: str | None, overwrite: bool) -> Path | None:
    """``--out`` as a path, refused when it exists (unless ``overwrite``) or is a folder."""
    if out is None:
        return None
    path = Path(out)
    if path.is_dir():
        raise ValueError(f"--out {path} is a folder; give a file name")
    if path.exists() and not overwrite:
        raise ValueError(f"--out {path} exists; give another path, or --overwrite to replace it")
    return path


def cmd_export(args) -> int:
    from neurosim.nir_files import write_graph
    from rate_models.spiking.nir_io import export_run

    out = _free(args.out, args.overwrite)
    graph = export_run(args.run, args.seed, args.dt)
    write_graph(graph, out, overwrite=args.overwrite)
    m = graph.metadata
    print(f"wrote {out}: {m['arch']} LIF ({m['rule']} on {m['dataset']}, seed {m['seed']}), "
          f"dt {m['dt']:g} s, {m['num_steps']} steps, reset subtract, {m['encoder']} encoder")
    return 0


def _lif_comparison(chain, graph, s, x, y, brian) -> dict:
    """The graph in the LIF mode on the same samples: accuracy and, for the deterministic current
    encoder, spike counts beside Brian2's."""
    import numpy as np
    import torch

    from rate_models.spiking.nir_io import lif_network_from_nir

    net = lif_network_from_nir(graph, dt=s.dt, num_steps=s.num_steps, encoder=s.encoder,
                               input_baseline=s.input_baseline)
    logits, counts = [], [[] for _ in chain.stages[:-1]]
    with torch.no_grad():
        for i in range(0, len(x), 1024):
            p = net.simulate(torch.as_tensor(x[i:i + 1024], dtype=torch.float32))
            logits.append(p.logits.numpy())
            for l, rate in enumerate(p.rates[1:]):
                counts[l].append(np.rint(rate.numpy() * s.num_steps))
    logits = np.concatenate(logits)
    out = {"lif_test_accuracy": 100.0 * float((logits.argmax(1) == y).mean()),
           "max_abs_score_difference": float(np.abs(logits - brian.scores).max())}
    if s.encoder == "current":
        diffs = [np.abs(np.concatenate(c) - brian.counts[st.name]) for c, st in zip(counts, chain.stages)]
        out["spike_counts_equal_fraction"] = float(np.mean(np.concatenate([d.ravel() for d in diffs]) == 0))
        out["spike_count_max_abs_difference"] = float(max(d.max() for d in diffs))
    return out


def cmd_nir_run(args) -> int:
    import numpy as np

    from circuits.nir_network import simulate
    from neurosim.datasets import load_dataset
    from neurosim.io import atomic_write_json
    from neurosim.nir_chain import read_chain_file, settings

    out = _free(args.out, args.overwrite)
    graph, chain = read_chain_file(args.file)
    s = settings(chain, args.dt, args.num_steps, args.encoder, args.input_baseline, args.file)
    data = load_dataset(args.dataset, args.data_dir)
    n = len(data.x_test) if args.test_samples is None else args.test_samples
    if n > len(data.x_test):
        raise ValueError(f"--test-samples {n}: {args.dataset} has {len(data.x_test)} test samples")
    if chain.sizes[-1] != data.n_classes:
        raise ValueError(f"the graph's output has {chain.sizes[-1]} neurons, {args.dataset} has "
                         f"{data.n_classes} classes")
    x = data.x_test[:n].reshape(n, -1).astype(np.float64)
    y = np.asarray(data.y_test[:n])
    t0 = time.perf_counter()
    run = simulate(chain, s, x, args.device, args.seed, args.threads)
    summary = {"file": str(args.file), "dataset": args.dataset, "test_samples": n, "device": args.device,
               "sizes": chain.sizes, "dt": s.dt, "num_steps": s.num_steps, "encoder": s.encoder,
               "test_accuracy": 100.0 * float((run.scores.argmax(1) == y).mean()),
               "seconds": time.perf_counter() - t0}
    print(f"test accuracy: {summary['test_accuracy']:.2f}% (Brian2 {args.device}, {n} {args.dataset} "
          f"test samples, {'-'.join(map(str, chain.sizes))}, dt {s.dt:g} s, {s.num_steps} steps, "
          f"{summary['seconds']:.1f} s)")
    if args.compare_lif:
        summary.update(_lif_comparison(chain, graph, s, x, y, run))
        line = f"LIF mode: {summary['lif_test_accuracy']:.2f}%"
        if "spike_counts_equal_fraction" in summary:
            line += (f"; hidden spike counts equal for {100 * summary['spike_counts_equal_fraction']:.3f}% "
                     f"of (sample, neuron) pairs, max |difference| {summary['spike_count_max_abs_difference']:g}")
        print(line + f"; max |score difference| {summary['max_abs_score_difference']:.3g}")
    if out is not None:
        atomic_write_json(out, summary)
    return 0
