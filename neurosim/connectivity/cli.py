"""``neurosim connectivity``: analyze a file, a run folder or a fresh Brian2 circuit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from neurosim.connectivity.references import REFERENCES

if TYPE_CHECKING:
    from neurosim.connectivity.graph import Graph

CIRCUIT_SIZES = [64, 32, 10]


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "connectivity", help="bidirectional-synapse statistics of a network beside cortical data",
        description="Pair, reciprocity, weight-correlation and triad statistics of a network "
                    "(file, rate-model run folder or Brian2 circuit) beside a cortical reference.")
    p.add_argument("source", nargs="?", help="connectivity file (.csv/.tsv edge list pre,post,weight; "
                   ".npy dense; .npz dense or scipy sparse; .nir NIR graph) or a run folder (config.json)")
    p.add_argument("--circuit", metavar="RULE", help="build a fresh Brian2 circuit of RULE "
                   f"(sizes {'-'.join(map(str, CIRCUIT_SIZES))}, rate mode) instead of SOURCE")
    p.add_argument("--reference", choices=list(REFERENCES), default="song2005")
    p.add_argument("--shuffles", type=int, default=0, metavar="N",
                   help="degree- and reciprocity-preserving rewirings for triad z-scores")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of markdown")
    p.add_argument("--plot", metavar="DIR", help="write figures, connectivity.json and report.md to DIR")
    p.add_argument("--seed", type=int, help="run folder: which seed's checkpoint (default the "
                   "first); circuit: its seed (default 0); also seeds bootstrap and rewiring")
    p.add_argument("--threshold", type=float, default=0.0,
                   help="connections with |w| <= THRESHOLD are absent (default 0)")
    p.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                   help="bootstrap resamples for the correlation intervals (default 1000)")
    p.set_defaults(func=cmd_connectivity)


def load_source(args) -> Graph:
    from neurosim.connectivity.adapters import from_brian2, from_run_folder, load_file

    if (args.source is None) == (args.circuit is None):
        raise ValueError("give either SOURCE (a file or run folder) or --circuit RULE")
    if args.circuit:
        from brian2.utils.logger import BrianLogger

        import circuits

        # the circuit is built only to read its synapses and is never run: Brian2's warning that
        # its objects were "never included in a network" (a run) is expected here
        BrianLogger.suppress_name("unused_brian_object")
        circuit = circuits.build_circuit(args.circuit, sizes=CIRCUIT_SIZES,
                                         seed=args.seed or 0, mode="rate")
        return from_brian2(circuit.network, f"{args.circuit} circuit "
                           f"({'-'.join(map(str, CIRCUIT_SIZES))}, seed {args.seed or 0})",
                           args.threshold)
    source = Path(args.source)
    if source.is_dir():
        return from_run_folder(source, args.seed, args.threshold)
    if source.suffix.lower() == ".nir":
        from neurosim.connectivity.nir_source import from_nir_file

        return from_nir_file(source, args.threshold)
    return load_file(source, args.threshold)


def cmd_connectivity(args) -> int:
    from neurosim.connectivity.analysis import analyze
    from neurosim.connectivity.references import get_reference
    from neurosim.connectivity.report import comparison_rows, format_report
    from neurosim.io import atomic_write_json, atomic_write_text

    if args.shuffles < 0 or args.bootstrap < 0:
        raise ValueError("--shuffles and --bootstrap must be >= 0")
    reference = get_reference(args.reference)
    graph = load_source(args)
    result = analyze(graph, shuffles=args.shuffles, seed=args.seed or 0, n_boot=args.bootstrap,
                     progress=not args.json)
    result["reference"] = {"name": reference.name, "comparison": comparison_rows(result, reference)}
    text = format_report(result, reference)
    if args.plot:
        from neurosim.connectivity.plots import write_plots

        folder = Path(args.plot)
        write_plots(graph, result, reference, folder)
        atomic_write_json(folder / "connectivity.json", result)
        atomic_write_text(folder / "report.md", text)
    print(json.dumps(result, allow_nan=False) if args.json else text, end="\n" if args.json else "")
    return 0
