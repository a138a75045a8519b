"""Time and peak memory of the connectivity analyzer on graphs of a million connections.

Two graphs of the pair model (``neurosim.connectivity.generate``), 1,000,000 connections
each, 30.6 % of connected pairs bidirectional (Song et al. 2005's share), lognormal weights with
r = 0.36 between reciprocal log weights:

* ``sparse``: 100,000 neurons (p = 1e-4);
* ``song-density``: 2,940 neurons, p = 0.116 (Song's connection probability).

For each: loading from a CSV edge list and from a scipy sparse ``.npz`` (``load_file``), the
triad census alone, and the whole analysis without shuffles (``analyze``, with 1,000 bootstrap
resamples and with none), timed with ``time.perf_counter`` (best of ``--repeats``); then the analysis once more
under ``tracemalloc`` for its peak of traced (numpy and Python) allocations, and the process's
peak resident memory (``resource.getrusage``). ``--networkx`` also times
``networkx.triadic_census`` on smaller graphs (its Python loop over neighbour pairs).

    python benchmarks/connectivity_scale.py [--repeats 2] [--networkx] [--out benchmarks/results/connectivity_scale.json]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from neurosim.connectivity import analyze
from neurosim.connectivity.adapters import load_file
from neurosim.connectivity.generate import pair_model_graph
from neurosim.connectivity.triads import triad_census
from neurosim.io import atomic_write_json

SHARE = 218 / 713  # bidirectional / connected pairs (Song 2005)


def song_share_graph(n: int, connections: int, seed: int = 0):
    """Pair model with ``connections`` expected connections and Song's bidirectional share."""
    bi = connections / (2 + (1 - SHARE) / SHARE)  # uni + 2 bi = E, bi / (uni + bi) = SHARE
    uni = connections - 2 * bi
    pairs = n * (n - 1) / 2
    return pair_model_graph(n, uni / pairs, bi / pairs, 0.0, 1.0, r_log=0.36, seed=seed)


def best_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def bench_graph(name: str, n: int, repeats: int) -> dict:
    g = song_share_graph(n, 1_000_000)
    with tempfile.TemporaryDirectory() as tmp:
        pre, post, w = g.edges()
        csv_path, npz_path = Path(tmp) / "edges.csv", Path(tmp) / "graph.npz"
        np.savetxt(csv_path, np.column_stack([pre, post, w]), fmt=["%d", "%d", "%.8g"],
                   delimiter=",", header="pre,post,weight", comments="")
        sp.save_npz(npz_path, g.W)
        load_csv = best_time(lambda: load_file(csv_path), repeats)
        load_npz = best_time(lambda: load_file(npz_path), repeats)
    census = best_time(lambda: triad_census(g), repeats)
    total = best_time(lambda: analyze(g), repeats)
    no_boot = best_time(lambda: analyze(g, n_boot=0), repeats)
    tracemalloc.start()
    result = analyze(g)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "graph": name, "n_neurons": g.n, "n_connections": g.n_edges,
        "connection_probability": result["connection_probability"],
        "bidirectional_fraction_of_connected": result["bidirectional_fraction_of_connected"],
        "reciprocal_weight_correlation": result["reciprocal_weight_correlation"],
        "seconds_load_csv": load_csv, "seconds_load_sparse_npz": load_npz,
        "seconds_triad_census": census, "seconds_analyze_no_shuffles": total,
        "seconds_analyze_no_shuffles_no_bootstrap": no_boot,
        "peak_traced_mib_analyze": peak / 2 ** 20,
    }


def bench_networkx(edges: int) -> dict:
    import networkx as nx

    n = edges // 20
    G = nx.gnm_random_graph(n, edges, seed=1, directed=True)
    t = time.perf_counter()
    nx.triadic_census(G)
    return {"n_neurons": n, "n_connections": edges, "seconds": time.perf_counter() - t}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--networkx", action="store_true", help="also time networkx.triadic_census")
    ap.add_argument("--out", default="benchmarks/results/connectivity_scale.json")
    args = ap.parse_args()
    rows = []
    for name, n in (("sparse", 100_000), ("song-density", 2_940)):
        rows.append(bench_graph(name, n, args.repeats))
        print({k: round(v, 4) if isinstance(v, float) else v for k, v in rows[-1].items()}, flush=True)
    out = {
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpus": os.cpu_count(), "numpy": np.__version__},
        "repeats": args.repeats, "graphs": rows,
        "peak_rss_mib_process": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if args.networkx:
        out["networkx_triadic_census"] = [bench_networkx(e) for e in (10_000, 100_000)]
        print(out["networkx_triadic_census"], flush=True)
    atomic_write_json(args.out, out)
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
