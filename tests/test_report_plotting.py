import json

import numpy as np
import pytest

from neurosim.io import atomic_write_json, atomic_write_text, read_csv_rows, write_csv_rows
from neurosim.metrics import weight_distribution_fits
from neurosim.plotting import plot_alignment, plot_learning_curves, plot_weight_histogram
from neurosim.report import collect_runs, markdown_table


def leftovers(folder, keep):
    return sorted(p.name for p in folder.iterdir() if p.name != keep)


# --- io ---------------------------------------------------------------------

def test_json_roundtrip_keeps_key_order_and_converts_numpy(tmp_path):
    path = atomic_write_json(tmp_path / "a.json", {"z": 1, "a": np.float32(0.5), "v": np.arange(3)})
    assert path.read_text().splitlines()[1] == '  "z": 1,'
    assert json.loads(path.read_text()) == {"z": 1, "a": 0.5, "v": [0, 1, 2]}


def test_failed_json_leaves_previous_content_and_no_temp(tmp_path):
    path = tmp_path / "summary.json"
    atomic_write_json(path, {"ok": 1})
    with pytest.raises(ValueError, match=r"\['per_seed'\]\[1\]\['loss'\]"):
        atomic_write_json(path, {"per_seed": [{"loss": 1.0}, {"loss": float("nan")}]})
    with pytest.raises(TypeError):
        atomic_write_json(path, {"bad": object()})
    assert json.loads(path.read_text()) == {"ok": 1}
    assert leftovers(tmp_path, "summary.json") == []


def test_failed_text_write_removes_temp(tmp_path):
    path = tmp_path / "notes.md"
    atomic_write_text(path, "old")
    with pytest.raises(TypeError):
        atomic_write_text(path, b"bytes")
    assert path.read_text() == "old"
    assert leftovers(tmp_path, "notes.md") == []


def test_csv_union_of_keys_and_failed_write(tmp_path):
    path = tmp_path / "metrics.csv"
    write_csv_rows(path, [{"epoch": 1, "loss": 0.5}, {"epoch": 2, "angle_deg": 80.0}])
    assert read_csv_rows(path) == [
        {"epoch": "1", "loss": "0.5", "angle_deg": ""},
        {"epoch": "2", "loss": "", "angle_deg": "80.0"},
    ]
    before = path.read_text()
    with pytest.raises(ValueError):  # a key outside the explicit fieldnames fails mid-write
        write_csv_rows(path, [{"epoch": 1}, {"epoch": 2, "extra": 3}], fieldnames=["epoch"])
    assert path.read_text() == before
    assert leftovers(tmp_path, "metrics.csv") == []


# --- report -----------------------------------------------------------------

def fake_run(folder, rule, dataset, accs, seconds, arch="1024"):
    folder.mkdir(parents=True)
    summary = {
        "rule": rule, "dataset": dataset, "arch": arch, "epochs": 100,
        "test_accuracy": float(np.mean(accs)), "test_accuracy_std": float(np.std(accs)),
        "per_seed": [{"seed": i, "test_accuracy": a} for i, a in enumerate(accs)],
        "seconds_per_epoch": seconds,
    }
    atomic_write_json(folder / "summary.json", summary)
    return folder


def test_collect_runs_from_run_and_parent_folders(tmp_path):
    bp = fake_run(tmp_path / "runs" / "bp", "BP", "MNIST", [98.0, 98.2], 1.0)
    fake_run(tmp_path / "runs" / "pepita", "PEPITA", "MNIST", [97.9, 98.1, 98.3], 2.0)
    runs = collect_runs([tmp_path / "runs", bp])  # bp listed twice: loaded once
    assert [r["rule"] for r in runs] == ["BP", "PEPITA"]
    assert runs[0]["path"] == str(bp)
    assert len(collect_runs(bp)) == 1
    with pytest.raises(FileNotFoundError, match="no run"):
        collect_runs(tmp_path / "empty_or_missing")


def test_markdown_table_numbers(tmp_path):
    fake_run(tmp_path / "bp", "BP", "MNIST", [98.0, 98.2], 1.0)
    fake_run(tmp_path / "pepita", "PEPITA", "MNIST", [97.9, 98.1, 98.3], 2.5)
    fake_run(tmp_path / "pepita_c10", "PEPITA", "CIFAR-10", [52.0], 3.0)
    table = markdown_table(collect_runs(tmp_path), reference={"PEPITA": {"MNIST": (98.01, 0.09)}})
    lines = table.splitlines()
    header = next(l for l in lines if l.startswith("| rule"))
    assert [c.strip() for c in header.strip("|").split("|")] == ["rule", "MNIST", "MNIST (ref.)", "CIFAR-10"]
    bp_row = next(l for l in lines if l.startswith("| BP"))
    pepita_row = next(l for l in lines if l.startswith("| PEPITA") and "±" in l)
    assert "98.10 ± 0.14 (n=2)" in bp_row  # std of [98.0, 98.2] with ddof=1 = 0.1414
    assert "—" in bp_row
    assert "98.10 ± 0.20 (n=3)" in pepita_row and "98.01 ± 0.09" in pepita_row
    assert "52.00 ± 0.00 (n=1)" in pepita_row
    assert "2.50 s (100 ep)" in table and "1.00 s (100 ep)" in table


def test_markdown_table_splits_archs_and_rejects_duplicate_seeds(tmp_path):
    fake_run(tmp_path / "a", "BP", "MNIST", [98.0], 1.0, arch="1024")
    fake_run(tmp_path / "b", "BP", "MNIST", [98.5], 1.0, arch="1024-1024")
    assert "MNIST (1024-1024)" in markdown_table(collect_runs(tmp_path))
    fake_run(tmp_path / "c", "BP", "MNIST", [97.0], 1.0, arch="1024")
    with pytest.raises(ValueError, match="seed 0"):
        markdown_table(collect_runs(tmp_path))


# --- plots ------------------------------------------------------------------

def metrics_rows():
    rows = []
    for seed in range(3):
        for epoch in range(1, 6):
            row = {
                "seed": str(seed), "epoch": str(epoch),
                "train_accuracy": str(90 + epoch + seed), "test_accuracy": str(89 + epoch),
                "train_loss": str(1 / epoch), "test_loss": str(1.1 / epoch),
                "angle_F_W_deg": str(80 - epoch - seed), "weight_alignment_l1_deg": "" if epoch == 3 else "70",
            }
            rows.append(row)
    return rows


def assert_png(path):
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 1000


def test_plots_write_png_files(tmp_path):
    rows = metrics_rows()
    assert_png(plot_learning_curves(rows, tmp_path / "figs" / "curves.png", title="PEPITA MNIST"))
    assert_png(plot_alignment(rows, tmp_path / "figs" / "alignment.png"))
    w = np.random.default_rng(0).standard_t(4, size=5000) * 0.05
    assert_png(plot_weight_histogram(w, weight_distribution_fits(w), tmp_path / "figs" / "hist.png"))
    assert leftovers(tmp_path / "figs", "") == ["alignment.png", "curves.png", "hist.png"]


def test_plot_alignment_without_angle_columns_writes_nothing(tmp_path):
    rows = [{k: v for k, v in r.items() if not k.endswith("_deg")} for r in metrics_rows()]
    assert plot_alignment(rows, tmp_path / "alignment.png") is None
    assert not (tmp_path / "alignment.png").exists()


def test_legends_are_words_and_loss_bands_stay_above_zero():
    from neurosim.plotting import _new_figure, _plot_band, describe_column

    assert describe_column("bp_update_angle_l2_deg") == "layer 2: update vs backprop's gradient"
    assert describe_column("weight_alignment_l1_deg") == "layer 1: forward weights vs feedback B"
    assert describe_column("angle_F_W_deg") == "F vs product of forward weights"
    assert describe_column("some_new_metric_deg") == "some new metric"
    rows = [{"seed": s, "epoch": 1, "train_loss": v} for s, v in enumerate([0.01, 0.02, 3.0])]
    _, (ax,) = _new_figure(1)
    _plot_band(ax, rows, "train_loss", "train set", floor=0.0)
    band = ax.collections[0].get_paths()[0].vertices
    assert band[:, 1].min() == 0.0  # mean 1.01 - std 1.72 would dip below 0


def test_learning_curves_draw_the_control(tmp_path, monkeypatch):
    import neurosim.plotting as plotting

    figures = []
    monkeypatch.setattr(plotting, "_save", lambda fig, path: figures.append(fig) or path)
    rows = [{"seed": 0, "epoch": e, "train_accuracy": 50 + e, "test_accuracy": 40 + e,
             "train_loss": 1 / e, "test_loss": 1.2 / e} for e in (1, 2, 3)]
    control = [{**r, "test_accuracy": r["test_accuracy"] - 5} for r in rows]
    plotting.plot_learning_curves(rows, tmp_path / "curves.png", control_rows=control)
    accuracy_axis = figures[0].axes[0]
    labels = [t.get_text() for t in accuracy_axis.get_legend().get_texts()]
    assert labels == ["train set", "test set", "test set, hidden layers frozen (control)"]
    control_line = accuracy_axis.get_lines()[2]
    assert list(control_line.get_ydata()) == [36, 37, 38] and control_line.get_linestyle() == "--"
