"""Safe with every input: checkpoints run no code, user mistakes are one ``error:`` line (exit 2,
no traceback) and write nothing, run folders are never replaced silently, writes leave no debris
and respect the umask."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from neurosim.cli import main
from neurosim.io import read_csv_rows

TINY = ["--dataset", "digits", "--arch", "16", "--quiet"]


class Payload:
    """Unpickled without restriction, it creates the file ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished one-epoch dfa run."""
    out = tmp_path_factory.mktemp("runs") / "dfa"
    assert main(["train", "--rule", "dfa", "--epochs", "1", "--out", str(out), *TINY]) == 0
    return out


def _copy(run: Path, dest: Path) -> Path:
    import shutil

    shutil.copytree(run, dest)
    return dest


def _refused(capsys, argv, *needles) -> str:
    """Run ``argv``; assert exit 2 with an ``error:`` message holding every needle, no traceback;
    return the message."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and "error: " in err and "Traceback" not in err, err
    message = err[err.index("error: "):]
    for needle in needles:
        assert needle in message, (needle, err)
    return message


def test_a_checkpoint_that_runs_code_is_refused_and_runs_nothing(finished, tmp_path, capsys):
    run = _copy(finished, tmp_path / "run")
    marker = tmp_path / "pwned"
    torch.save({"rule": Payload(marker)}, run / "checkpoints" / "seed0.pt")
    # the payload is real: an unrestricted load runs it
    torch.load(run / "checkpoints" / "seed0.pt", weights_only=False)
    assert marker.exists()
    marker.unlink()
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    _refused(capsys, ["train", "--rule", "dfa", "--epochs", "2", "--out", str(run), "--resume", *TINY],
             "seed0.pt", "posix.system", "nothing in it ran")
    _refused(capsys, ["connectivity", str(run)], "seed0.pt", "nothing in it ran")
    assert not marker.exists()
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before


@pytest.mark.parametrize("damage", ["truncated", "empty", "random", "foreign"])
def test_a_damaged_checkpoint_is_named_with_the_way_on(finished, tmp_path, capsys, damage):
    run = _copy(finished, tmp_path / "run")
    ckpt = run / "checkpoints" / "seed0.pt"
    data = ckpt.read_bytes()
    ckpt.write_bytes({"truncated": data[: len(data) // 2], "empty": b"",
                      "random": os.urandom(4096), "foreign": b""}[damage])
    if damage == "foreign":  # a valid torch file that is not a checkpoint
        torch.save({"weights": torch.ones(3)}, ckpt)
    line = _refused(capsys, ["train", "--rule", "dfa", "--epochs", "2", "--out", str(run), "--resume", *TINY],
                    str(ckpt))
    assert "--overwrite" in line and "earlier copy" in line


def _bad_inputs(tmp_path: Path, finished: Path) -> list[tuple[list[str], str, Path | None]]:
    """(argv, text the error must hold, a folder that must not be created)."""
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    edges = tmp_path / "edges"
    edges.mkdir()
    (edges / "half_names.csv").write_text("pre,post,weight\n0,1,0.5\n1.5,2,1\n")
    (edges / "missing_weight.csv").write_text("pre,post,weight\n0,1,0.5\n1,2\n2,0,1\n")
    (edges / "bad_weight.csv").write_text("0,1,0.5\n1,2,heavy\n")
    (edges / "random.npz").write_bytes(os.urandom(512))
    (edges / "random.npy").write_bytes(os.urandom(512))
    import numpy as np
    np.save(edges / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    new = tmp_path / "new"
    train = ["train", "--rule", "dfa", "--epochs", "1", *TINY]
    return [
        (train + ["--momentum", "5", "--out", str(new)], "--momentum", new),
        (train + ["--weight-decay", "-1", "--out", str(new)], "--weight-decay", new),
        (train + ["--seed", "-1", "--out", str(new)], "--seed", new),
        (train + ["--lr", "nan", "--out", str(new)], "--lr", new),
        (train + ["--lr", "0", "--out", str(new)], "--lr", new),
        (train + ["--epochs", "0", "--out", str(new)], "--epochs", new),
        (train + ["--dropout", "1.5", "--out", str(new)], "--dropout", new),
        (train + ["--control", "--freeze-hidden", "--out", str(new)], "--control", new),
        (train + ["--arch", "100000000", "--out", str(new)], "GiB", new),
        (["train", "--rule", "pepita-hebbian", "--arch", "pepita-conv", "--epochs", "1", "--quiet",
          "--out", str(new)], "no convolutional form", new),
        (["train", "--rule", "pepita", "--arch", "pepita-conv", "--seeds", "2", "--seed-batch", "--epochs", "1",
          "--quiet", "--out", str(new)], "--seed-batch", new),
        (train + ["--out", str(a_file)], "is a file", None),
        (train + ["--out", str(a_file / "run")], "a_file", None),
        (train + ["--out", "/proc/neurosim-run"], "/proc/neurosim-run", None),
        (train + ["--out", str(finished)], "already holds a run", None),
        (train + ["--out", str(new), "--resume"], "does not exist", new),
        (train + ["--out", str(finished), "--resume", "--lr", "0.5"], "lr: 0.01 in the run, 0.5 now", None),
        (train + ["--out", str(finished), "--resume", "--overwrite"], "give one of them", None),
        (["train", "--dataset", "mnist", "--data-dir", str(tmp_path / "nowhere"), "--epochs", "1",
          "--out", str(new), "--quiet"], "mnist", new),
        (["connectivity", str(edges / "half_names.csv")], "line 3", None),
        (["connectivity", str(edges / "missing_weight.csv")], "line 3 has no weight", None),
        (["connectivity", str(edges / "bad_weight.csv")], "line 2", None),
        (["connectivity", str(edges / "random.npz")], "random.npz", None),
        (["connectivity", str(edges / "random.npy")], "random.npy", None),
        (["connectivity", str(edges / "objects.npy")], "objects.npy", None),
        (["connectivity", str(edges / "absent.csv")], "does not exist", None),
        (["report", str(tmp_path / "edges")], "no run in", None),
    ]


def test_bad_inputs_are_one_error_line_and_write_nothing(finished, tmp_path, capsys):
    before = {p.relative_to(finished): p.read_bytes() for p in finished.rglob("*") if p.is_file()}
    for argv, needle, absent in _bad_inputs(tmp_path, finished):
        _refused(capsys, argv, needle)
        if absent is not None:
            assert not absent.exists(), argv
    after = {p.relative_to(finished): p.read_bytes() for p in finished.rglob("*") if p.is_file()}
    assert after == before  # the finished run was neither overwritten nor touched


def test_overwrite_replaces_a_run_and_resume_extends_a_finished_one(finished, tmp_path, capsys):
    run = _copy(finished, tmp_path / "run")
    (run / "checkpoints" / "seed7.pt").write_bytes(b"stale")  # a file of the earlier run
    straight = tmp_path / "straight"
    assert main(["train", "--rule", "dfa", "--epochs", "2", "--out", str(straight), *TINY]) == 0
    # --resume with a larger --epochs continues the finished one-epoch run to the same result
    assert main(["train", "--rule", "dfa", "--epochs", "2", "--out", str(run), "--resume", *TINY]) == 0
    assert [r["test_accuracy"] for r in read_csv_rows(run / "metrics.csv")] == \
        [r["test_accuracy"] for r in read_csv_rows(straight / "metrics.csv")]
    assert json.loads((run / "config.json").read_text())["training"]["epochs"] == 2
    _refused(capsys, ["train", "--rule", "dfa", "--epochs", "1", "--out", str(run), "--resume", *TINY],
             "trained 2 epochs")
    assert main(["train", "--rule", "bp", "--epochs", "1", "--out", str(run), "--overwrite", *TINY]) == 0
    assert json.loads((run / "summary.json").read_text())["rule"] == "bp"
    assert not (run / "checkpoints" / "seed7.pt").exists()
    assert len(read_csv_rows(run / "metrics.csv")) == 1


def test_report_skips_unfinished_and_diverged_runs_with_a_note(finished, tmp_path, capsys):
    runs = tmp_path / "runs"
    runs.mkdir()
    _copy(finished, runs / "good")
    assert main(["train", "--rule", "bp", "--epochs", "3", "--lr", "1e4", "--out", str(runs / "boom"),
                 *TINY]) == 3
    assert json.loads((runs / "boom" / "diverged.json").read_text())["message"].startswith("run diverged")
    unfinished = _copy(finished, runs / "unfinished")
    (unfinished / "summary.json").unlink()
    capsys.readouterr()
    assert main(["report", str(runs)]) == 0
    captured = capsys.readouterr()
    assert "dfa" in captured.out and "bp" not in captured.out
    assert "boom: diverged" in captured.err and "unfinished: unfinished" in captured.err
    _refused(capsys, ["report", str(runs / "boom")], "none of the given folders")


def test_divergence_names_a_checkpoint_only_below_the_limit(tmp_path, monkeypatch, capsys):
    import rate_models.loop as loop_module

    real, calls = loop_module.evaluate, {"n": 0}

    def exploding(net, split, *a, **k):  # epoch 2's evaluated training loss is far above the limit
        calls["n"] += 1
        loss, acc = real(net, split, *a, **k)
        return (1e9, acc) if calls["n"] == 3 else (loss, acc)

    monkeypatch.setattr(loop_module, "evaluate", exploding)
    out = tmp_path / "run"
    assert main(["train", "--rule", "dfa", "--epochs", "3", "--out", str(out), *TINY]) == 3
    err = capsys.readouterr().err
    row = read_csv_rows(out / "metrics.csv")[-1]
    assert "epoch 2: evaluated training loss is 1e+09" in err
    assert f"seed0.pt (epoch 1, training loss {float(row['train_loss']):.4g})" in err
    assert row["epoch"] == "1" and float(row["train_loss"]) < 1e4


def test_files_respect_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        out = tmp_path / "run"
        assert main(["train", "--rule", "dfa", "--epochs", "1", "--out", str(out), *TINY]) == 0
    finally:
        os.umask(old)
    for p in [*out.iterdir(), *(out / "checkpoints").iterdir()]:
        if p.is_file():
            assert p.stat().st_mode & 0o777 == 0o640, p


def test_a_killed_run_leaves_no_temporary_files(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-m", "neurosim", "train", "--rule", "dfa", "--epochs", "200",
                             "--out", str(out), *TINY], env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / "metrics.csv").exists() and time.time() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM and "Traceback" not in err
    assert not list(out.rglob("*.tmp"))
    # debris of a SIGKILL (which nothing can catch) is removed by the next run in the folder
    (out / ".metrics.csv.x1y2.tmp").write_text("partial")
    assert main(["train", "--rule", "dfa", "--epochs", "1", "--out", str(out), "--overwrite", *TINY]) == 0
    assert not list(out.rglob("*.tmp"))


def test_a_closed_pipe_is_no_traceback(finished, monkeypatch, capsys):
    read, write = os.pipe()
    os.close(read)  # the reader (e.g. `head`) has gone away
    with open(write, "w", buffering=1) as closed:
        monkeypatch.setattr(sys, "stdout", closed)
        assert main(["report", str(finished)]) == 1
    assert capsys.readouterr().err == ""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run(f"{sys.executable} -m neurosim train --help | head -c 10", shell=True, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.stdout == "usage: neu" and proc.stderr == ""
