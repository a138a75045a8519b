"""Collect run summaries and format them as markdown tables (PEPITA Table 1 style)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from neurosim.metrics import mean_std

SUMMARY = "summary.json"


def _holds_run(path: Path) -> bool:
    return (path / SUMMARY).is_file() or (path / "config.json").is_file()


def _run_dirs(path: Path) -> list[Path]:
    """``path`` when it is a run folder (finished or not), else its immediate subfolders that are."""
    if _holds_run(path):
        return [path]
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.is_dir() and _holds_run(p))
        if found:
            return found
    raise FileNotFoundError(f"no run in {path}: no {SUMMARY} or config.json there or in its immediate "
                            "subfolders; give run folders written by 'neurosim train'")


def _unfinished(run_dir: Path) -> str:
    """Why a run folder has no summary: it diverged (with its message) or has not finished."""
    diverged = run_dir / "diverged.json"
    if diverged.is_file():
        try:
            message = json.loads(diverged.read_text(encoding="utf-8"))["message"]
            return "diverged: " + message.split(". ")[0]
        except (OSError, ValueError, KeyError, TypeError):
            return "diverged"
    return "unfinished (no summary.json; continue it with neurosim train ... --resume)"


def collect_runs(paths: str | os.PathLike | Iterable[str | os.PathLike],
                 skipped: list[str] | None = None) -> list[dict]:
    """Load the summary.json of each run folder.

    A path is a run folder or a parent folder whose direct subfolders are runs. Each returned
    dict is the summary plus ``"path"`` (the run folder). A run folder without a summary
    (diverged, unfinished) or with a damaged one is left out, and a note on it appended to
    ``skipped`` when given. Raises FileNotFoundError for a path that holds no run.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    skipped = [] if skipped is None else skipped
    runs, seen = [], set()
    for path in paths:
        for run_dir in _run_dirs(Path(path)):
            if run_dir.resolve() in seen:
                continue
            seen.add(run_dir.resolve())
            if not (run_dir / SUMMARY).is_file():
                skipped.append(f"{run_dir}: {_unfinished(run_dir)}")
                continue
            try:
                summary = json.loads((run_dir / SUMMARY).read_text(encoding="utf-8"))
                for key in ("rule", "dataset", "test_accuracy"):
                    summary[key]
            except (OSError, ValueError, KeyError, TypeError) as err:
                skipped.append(f"{run_dir}: damaged {SUMMARY} ({type(err).__name__}: {err})")
                continue
            runs.append({**summary, "path": str(run_dir)})
    return runs


def _columns(runs: list[dict], ref_datasets: set[str]) -> list[tuple[str, str | None, str]]:
    """(dataset, arch, title) per column; arch None marks a reference column.

    The arch is shown only where a dataset has several; a dataset's reference
    column follows its result columns.
    """
    archs: dict[str, list[str]] = {}
    for run in runs:
        names = archs.setdefault(str(run["dataset"]), [])
        if str(run.get("arch", "")) not in names:
            names.append(str(run.get("arch", "")))
    columns = []
    for dataset, names in archs.items():
        columns += [(dataset, arch, dataset if len(names) == 1 else f"{dataset} ({arch})") for arch in names]
        if dataset in ref_datasets:
            columns.append((dataset, None, f"{dataset} (ref.)"))
    return columns


def _label(run: dict) -> str:
    """A table row's name: the rule, marked when its hidden layers were frozen."""
    return str(run["rule"]) + (" (hidden frozen)" if run.get("freeze_hidden") else "")


def _seed_accuracies(group: list[dict], key: str = "per_seed") -> list[float]:
    """Per-seed test accuracies (``key``: ``per_seed``, or ``control_per_seed`` for the runs'
    frozen-hidden controls) pooled over runs; a seed appearing twice is an error."""
    values: dict = {}
    for run in group:
        mean = run["test_accuracy" if key == "per_seed" else "control_test_accuracy"]
        per_seed = run.get(key) or [{"seed": run.get("seed"), "test_accuracy": mean}]
        for entry in per_seed:
            if entry["seed"] in values:
                raise ValueError(
                    f"seed {entry['seed']} of {run['rule']}/{run['dataset']}/{run.get('arch', '')} "
                    f"appears in more than one run (latest: {run.get('path')})"
                )
            values[entry["seed"]] = float(entry["test_accuracy"])
    return list(values.values())


def _format_reference(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (tuple, list)):
        return f"{value[0]:.2f} ± {value[1]:.2f}"
    return f"{value:.2f}"


def _table(header: list[str], body: list[list[str]]) -> str:
    """Padded markdown table: first column left-aligned, the others right-aligned."""
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        padded = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join(":" + "-" * (w + 1) if i == 0 else "-" * (w + 1) + ":" for i, w in enumerate(widths)) + "|"
    return "\n".join([line(header), rule, *(line(row) for row in body)])


def markdown_table(runs: list[dict], reference: Mapping[str, Mapping[str, object]] | None = None) -> str:
    """Markdown tables of test accuracy and seconds/epoch: one row per rule, one column per dataset.

    Accuracy cells are ``mean ± std (n=N)`` over the pooled per-seed test
    accuracies (sample std, two decimals, in the stored unit — percent). A
    dataset trained with several archs gets one column per arch.
    ``reference`` (e.g. the paper's numbers), ``{rule: {dataset: value}}`` with
    value a string, a number or a (mean, std) pair, adds a "<dataset> (ref.)"
    column after each dataset it mentions. The second table gives the mean
    seconds per epoch over runs, with the number of epochs trained.
    """
    if not runs:
        raise ValueError("no runs to tabulate")
    reference = reference or {}
    columns = _columns(runs, {dataset for by_dataset in reference.values() for dataset in by_dataset})
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for run in runs:
        groups.setdefault((_label(run), str(run["dataset"]), str(run.get("arch", ""))), []).append(run)

    acc_body, time_body, gain_body = [], [], []
    for rule in dict.fromkeys(_label(run) for run in runs):
        acc_row, time_row, gain_row = [rule], [rule], [rule]
        for dataset, arch, _ in columns:
            if arch is None:
                value = reference.get(rule, {}).get(dataset)
                acc_row.append("—" if value is None else _format_reference(value))
                continue
            group = groups.get((rule, dataset, arch))
            if not group:
                acc_row.append("—")
                time_row.append("—")
                gain_row.append("—")
                continue
            mean, std, n = mean_std(_seed_accuracies(group))
            acc_row.append(f"{mean:.2f} ± {std:.2f} (n={n})")
            gain_row.append(_gain_cell(group))
            seconds, _, _ = mean_std([float(run["seconds_per_epoch"]) for run in group])
            epochs = "/".join(str(e) for e in sorted({int(run["epochs"]) for run in group}))
            time_row.append(f"{seconds:.2f} s ({epochs} ep)")
        acc_body.append(acc_row)
        time_body.append(time_row)
        gain_body.append(gain_row)
    acc_header = ["rule", *(title for _, _, title in columns)]
    time_header = ["rule", *(title for _, arch, title in columns if arch is not None)]
    text = ("**Test accuracy (%)**, mean ± std over seeds\n\n" + _table(acc_header, acc_body)
            + "\n\n**Seconds per epoch** (mean over runs; epochs trained)\n\n"
            + _table(time_header, time_body) + "\n")
    gain_body = [row for row in gain_body if any(cell != "—" for cell in row[1:])]
    if gain_body:
        text += ("\n**Frozen-hidden control** (same seeds, samples and schedule; only the readout "
                 "learns): control accuracy (%) and hidden gain (accuracy minus control, points)\n\n"
                 + _table(time_header, gain_body) + "\n")
    return text


def _gain_cell(group: list[dict]) -> str:
    """``control X ± s, gain +g`` over the runs of a cell that trained their control."""
    with_control = [run for run in group if run.get("control_test_accuracy") is not None]
    if not with_control:
        return "—"
    control, c_std, n = mean_std(_seed_accuracies(with_control, "control_per_seed"))
    gain = mean_std(_seed_accuracies(with_control))[0] - control
    return f"control {control:.2f} ± {c_std:.2f}, gain {gain:+.2f} (n={n})"
