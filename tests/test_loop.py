"""The one training loop (``rate_models.loop``) and what it shares: streamed resume, run-folder
loading (``rate_models.saved_runs.load_run``) for every checkpoint layout, and rate runs that
never import snnTorch."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from neurosim.cli import main
from neurosim.datasets import load_dataset
from neurosim.io import DamagedFile, read_csv_rows
from rate_models.data import to_split
from rate_models.evaluation import evaluate
from rate_models.saved_runs import load_run
from rate_models.train import CONTROL_FOLDER

TINY = ["--dataset", "digits", "--arch", "16", "--quiet"]
TIMING = {"seconds", "samples_per_second"}


def _results(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def test_a_rate_run_does_not_import_snntorch():
    code = "import rate_models.train, rate_models.saved_runs, sys; print('snntorch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_streamed_run_resumed_after_epoch_1_equals_an_uninterrupted_one(
        tmp_path, interrupted_train):
    args = ["train", "--rule", "fa", "--stream", "--workers", "0", "--epochs", "3", "--lr", "0.05",
            "--dropout", "0.1", *TINY]
    assert main(args + ["--out", str(tmp_path / "straight")]) == 0
    assert interrupted_train(args + ["--out", str(tmp_path / "resumed")], epoch=2) == 130
    state = torch.load(tmp_path / "resumed" / "checkpoints" / "seed0.pt", weights_only=True)
    assert state["epoch"] == 1 and state["shuffle_rng"] == {"seed": 0, "epoch": 0}
    assert main(args + ["--out", str(tmp_path / "resumed"), "--resume"]) == 0
    straight = read_csv_rows(tmp_path / "straight" / "metrics.csv")
    resumed = read_csv_rows(tmp_path / "resumed" / "metrics.csv")
    assert len(straight) == 3 and _results(resumed) == _results(straight)


@pytest.fixture(scope="module")
def digits_test():
    data = load_dataset("digits")
    return to_split(data.x_test, data.y_test, data.n_classes, torch.device("cpu"))


@pytest.mark.parametrize("extra", [
    [],  # one seed
    ["--seeds", "2"],  # several seeds, one checkpoint each
    ["--seeds", "2", "--seed-batch"],  # one stacked checkpoint
    ["--neuron", "lif", "--num-steps", "5"],  # LIF
    ["--arch", "pepita-conv"],  # convolutional
], ids=["seed", "seeds", "seed-batch", "lif", "conv"])
def test_load_run_gives_each_seed_its_trained_model(tmp_path, digits_test, extra):
    out = tmp_path / "run"
    assert main(["train", "--rule", "dfa", "--epochs", "1", "--seed", "3", "--out", str(out), *TINY, *extra]) == 0
    rows = read_csv_rows(out / "metrics.csv")
    loaded = load_run(out)
    assert [seed for seed, _, _ in loaded] == [int(r["seed"]) for r in rows]
    for (seed, net, rule), row in zip(loaded, rows):
        assert rule.net is net and not net.training
        loss, acc = evaluate(net, digits_test)  # the loaded weights give the run's last row
        assert loss == pytest.approx(float(row["test_loss"]), rel=1e-6)
        assert acc == pytest.approx(float(row["test_accuracy"]), abs=1e-9)
    if "--seed-batch" in extra:
        assert not torch.equal(loaded[0][1].weights[0], loaded[1][1].weights[0])


def test_load_run_reads_a_control_subfolder_and_refuses_bad_checkpoints(tmp_path, digits_test):
    out = tmp_path / "run"
    assert main(["train", "--rule", "pepita", "--epochs", "1", "--control", "--out", str(out), *TINY]) == 0
    control = out / CONTROL_FOLDER
    (seed, net, _), = load_run(control)
    row = read_csv_rows(control / "metrics.csv")[-1]
    assert seed == 0 and evaluate(net, digits_test)[1] == pytest.approx(float(row["test_accuracy"]))
    ckpt = control / "checkpoints" / "seed0.pt"
    state = torch.load(ckpt, weights_only=True)  # written before checkpoints recorded the sizes
    torch.save({k: v for k, v in state.items() if k not in ("input_dim", "n_out")}, ckpt)
    assert torch.equal(load_run(control)[0][1].weights[0], net.weights[0])
    ckpt.write_bytes(ckpt.read_bytes()[:100])
    with pytest.raises(DamagedFile, match="seed0.pt"):
        load_run(control)
    ckpt.unlink()
    with pytest.raises(FileNotFoundError, match="seed0.pt"):
        load_run(control)
