"""Same-seed metrics of short runs, to show that a refactor leaves results unchanged.

Each case trains a small run from seed 0 on the ``digits`` set with the library entry point
(:func:`rate_models.train_run`) and records its ``metrics.csv`` rows. The cases cover one fully
connected run of every rate rule, a convolutional run of every rule with a convolutional form,
a LIF run of every LIF rule, a seed batch and a streamed run.

    python benchmarks/same_seed_metrics.py --out before.json          # on the old commit
    python benchmarks/same_seed_metrics.py --out after.json           # on the new one
    python benchmarks/same_seed_metrics.py --compare before.json after.json

``--compare`` prints, per case, the largest absolute difference over every numeric column and
row except the timing columns, and exits 1 when a case is missing or a difference exceeds ``--tolerance``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import tempfile
from pathlib import Path

import torch

FC = {"arch": "fc", "hidden": [32]}
CONV = {"arch": "pepita-conv"}
RATE_RULES = ["bp", "fa", "sign-symmetry", "kolen-pollack", "weight-mirror", "dfa", "sdfa", "drtp",
              "pepita", "pepita-f0", "pepita-random", "pepita-hebbian", "pepita-time-local",
              "pepita-afa", "pepita-wm", "pfa", "pfa-o"]
CONV_RULES = ["bp", "fa", "sign-symmetry", "kolen-pollack", "dfa", "sdfa", "drtp", "pepita",
              "pepita-f0", "pepita-random", "pfa", "pfa-o"]
LIF_RULES = ["bp", "dfa", "sdfa", "drtp", "pepita", "pfa"]
TIMING = {"seconds", "samples_per_second"}  # wall-clock columns, not results


def cases() -> dict[str, dict]:
    """Case name -> RunConfig values (besides the rule's defaults)."""
    out = {f"fc-{r}": {"rule": r, **FC} for r in RATE_RULES}
    out.update({f"conv-{r}": {"rule": r, **CONV} for r in CONV_RULES})
    out.update({f"lif-{r}": {"rule": r, "neuron": "lif", **FC, "num_steps": 5} for r in LIF_RULES})
    out["lif-conv-dfa"] = {"rule": "dfa", "neuron": "lif", **CONV, "num_steps": 3}
    out["seed-batch-dfa"] = {"rule": "dfa", **FC, "seeds": 2, "seed_batch": True}
    out["control-pepita"] = {"rule": "pepita", **FC, "control": True}
    out["stream-fa"] = {"rule": "fa", **FC, "stream": True, "workers": 0}
    return out


def run_case(values: dict, folder: Path) -> list[dict]:
    from neurosim.config import RunConfig
    from rate_models import train_run

    cfg = RunConfig.for_rule(values["rule"], **{k: v for k, v in values.items() if k != "rule"},
                             dataset="digits", epochs=2, seed=0)
    train_run(cfg, folder, progress=False)
    rows = []
    for path in sorted(folder.rglob("metrics.csv")):
        with open(path) as f:
            for row in csv.DictReader(f):
                rows.append({"file": str(path.relative_to(folder)), **row})
    return rows


def record(out: Path, only: list[str] | None) -> None:
    torch.set_num_threads(1)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, values in cases().items():
            if only and name not in only:
                continue
            results[name] = run_case(values, Path(tmp) / name)
            print(name, results[name][-1].get("test_accuracy"), flush=True)
    out.write_text(json.dumps(results, indent=1))


def _number(text: str) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def compare(before: Path, after: Path, tolerance: float) -> int:
    a, b = json.loads(before.read_text()), json.loads(after.read_text())
    worst_all, bad = 0.0, 0
    for name in a:
        if name not in b or len(a[name]) != len(b[name]):
            print(f"{name:20s} MISSING or different row count")
            bad += 1
            continue
        worst, column = 0.0, ""
        for ra, rb in zip(a[name], b[name]):
            for key, va in ra.items():
                if key in TIMING:
                    continue
                x, y = _number(va), _number(rb.get(key))
                if x is None or y is None or (math.isnan(x) and math.isnan(y)):
                    continue
                if abs(x - y) > worst:
                    worst, column = abs(x - y), key
        worst_all = max(worst_all, worst)
        flag = "" if worst <= tolerance else "  DIFFERS"
        bad += bool(flag)
        print(f"{name:20s} rows {len(a[name]):3d}  max |diff| {worst:.3g} {column}{flag}")
    print(f"{len(a)} cases, largest difference {worst_all:.3g}, {bad} beyond {tolerance:g}")
    return 1 if bad else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path)
    p.add_argument("--only", nargs="*", help="case names to run (default: all)")
    p.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    p.add_argument("--tolerance", type=float, default=1e-4)
    args = p.parse_args()
    if args.compare:
        return compare(*args.compare, args.tolerance)
    if not args.out:
        p.error("give --out FILE.json or --compare BEFORE AFTER")
    record(args.out, args.only)
    return 0


if __name__ == "__main__":
    sys.exit(main())
