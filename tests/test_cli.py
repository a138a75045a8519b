"""The command line end to end on digits, resume, divergence and bad input."""

import argparse
import json

import pytest
import torch

from neurosim.cli import main
from neurosim.config import parse_arch, parse_milestones
from neurosim.config import RunConfig
from neurosim.io import read_csv_rows
from neurosim.rules import rules_with
from neurosim.datasets import DATASETS


def test_train_end_to_end_on_digits(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--rule", "pepita", "--dataset", "digits", "--epochs", "3", "--arch", "64",
                 "--seeds", "2", "--lr", "0.05", "--out", str(out), "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "test accuracy:" in printed
    summary = json.loads((out / "summary.json").read_text())
    for key in ("rule", "dataset", "test_accuracy", "test_accuracy_std", "per_seed", "seconds_per_epoch"):
        assert key in summary
    assert summary["rule"] == "pepita" and summary["dataset"] == "digits"
    accs = [s["test_accuracy"] for s in summary["per_seed"]]
    assert len(accs) == 2 and accs[0] != accs[1]  # two seeds, two different networks
    assert summary["test_accuracy"] == pytest.approx(sum(accs) / 2)
    assert summary["test_accuracy"] > 80.0  # PEPITA learns digits within 3 epochs
    rows = read_csv_rows(out / "metrics.csv")
    assert [(r["seed"], r["epoch"]) for r in rows] == [(s, e) for s in ("0", "1") for e in ("1", "2", "3")]
    assert "angle_F_W_deg" in rows[0] and "bp_update_angle_l1_deg" in rows[0]
    config = json.loads((out / "config.json").read_text())
    assert RunConfig.from_dict(config).network.hidden == [64]
    for png in ("learning_curves.png", "alignment.png", "output_weights.png"):
        assert (out / png).stat().st_size > 1000

    code = main(["report", str(out)])
    table = capsys.readouterr().out
    assert code == 0 and "pepita" in table and f"{summary['test_accuracy']:.2f}" in table


def test_help_lists_every_rule_and_dataset(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    for name in rules_with("rate") + list(DATASETS):
        assert name in text
    with pytest.raises(SystemExit):
        main(["circuit", "--help"])
    text = capsys.readouterr().out
    for name in rules_with("circuit"):
        assert name in text


def _weights(out):
    state = torch.load(out / "checkpoints" / "seed0.pt", weights_only=True)["rule"]
    return {k: v for k, v in state.items()}


@pytest.mark.parametrize("rule", ["pepita", "kolen-pollack", "pfa"])
def test_resume_equals_uninterrupted(tmp_path, interrupted_train, rule):
    args = ["train", "--rule", rule, "--dataset", "digits", "--epochs", "4", "--arch", "32",
            "--lr", "0.05", "--quiet"]
    assert main(args + ["--out", str(tmp_path / "straight")]) == 0
    # "error: interrupted ..."
    assert interrupted_train(args + ["--out", str(tmp_path / "resumed")], epoch=3) == 130
    assert not (tmp_path / "resumed" / "summary.json").exists()
    assert main(args + ["--out", str(tmp_path / "resumed"), "--resume"]) == 0

    a, b = _weights(tmp_path / "straight"), _weights(tmp_path / "resumed")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    rows_a = read_csv_rows(tmp_path / "straight" / "metrics.csv")
    rows_b = read_csv_rows(tmp_path / "resumed" / "metrics.csv")
    assert [r["test_accuracy"] for r in rows_a] == [r["test_accuracy"] for r in rows_b]


def test_checkpoint_from_before_decayed_groups_resumes_to_the_same_weights(
        tmp_path, interrupted_train):
    """Checkpoints written before parameter groups carried ``"decayed"`` (weight decay is then
    group 0's) resume to the weights of an uninterrupted run, with the decay that starts in
    epoch 2 applied after the resume."""
    args = ["train", "--rule", "pfa", "--dataset", "digits", "--epochs", "3", "--arch", "32",
            "--lr", "0.05", "--weight-decay", "0", "--weight-decay-after-first-epoch", "0.01",
            "--quiet"]
    assert main(args + ["--out", str(tmp_path / "straight")]) == 0
    assert interrupted_train(args + ["--out", str(tmp_path / "resumed")], epoch=2) == 130
    ckpt = tmp_path / "resumed" / "checkpoints" / "seed0.pt"
    state = torch.load(ckpt, weights_only=True)
    groups = state["optimizer"]["param_groups"]
    assert groups[0]["decayed"] is True and groups[0]["weight_decay"] == 0  # epoch 1's
    for g in groups:
        g.pop("decayed", None)
    torch.save(state, ckpt)
    assert main(args + ["--out", str(tmp_path / "resumed"), "--resume"]) == 0

    a, b = _weights(tmp_path / "straight"), _weights(tmp_path / "resumed")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_diverging_run_stops_with_the_epoch(tmp_path, capsys):
    out = tmp_path / "boom"
    code = main(["train", "--rule", "bp", "--dataset", "digits", "--epochs", "3", "--arch", "32",
                 "--lr", "1e4", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 3
    assert "diverged in epoch 1" in err and "--lr" in err
    assert not (out / "summary.json").exists()


@pytest.mark.parametrize("argv, message", [
    (["--epochs", "0"], "epochs must be >= 1"),
    (["--dropout", "1.5"], "dropout must be in [0, 1)"),
    (["--lr", "-1"], "learning rate must be > 0"),
    (["--hidden-lr-scale", "0"], "hidden_lr_scale must be > 0 (--hidden-lr-scale"),
    (["--hidden-lr-scale", "nan"], "hidden_lr_scale is nan (--hidden-lr-scale)"),
])
def test_bad_values_get_clear_errors(tmp_path, capsys, argv, message):
    code = main(["train", "--dataset", "digits", "--out", str(tmp_path / "x"), "--quiet", *argv])
    assert code == 2
    assert message in capsys.readouterr().err


def test_unknown_rule_is_refused(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--rule", "backprop-ish"])
    assert "invalid choice" in capsys.readouterr().err


def test_missing_mnist_names_files_and_flag(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    code = main(["train", "--dataset", "mnist", "--data-dir", str(tmp_path / "empty"),
                 "--out", str(tmp_path / "x"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert "train-images-idx3-ubyte.gz" in err and "--data-dir" in err


def test_resume_with_other_settings_is_refused(tmp_path, capsys):
    args = ["train", "--dataset", "digits", "--epochs", "1", "--arch", "16", "--quiet",
            "--out", str(tmp_path / "r")]
    assert main(args) == 0
    assert main(args + ["--lr", "0.5", "--resume"]) == 2
    assert "configuration differs" in capsys.readouterr().err


def test_parse_arch():
    assert parse_arch("1024") == [1024]
    assert parse_arch("512-512") == [512, 512]
    assert parse_arch("fc2x1024") == [1024, 1024]
    assert parse_arch("none") == []


def test_schedule_flags_reach_the_run(tmp_path, capsys):
    assert parse_milestones("6,8") == [6, 8] and parse_milestones("none") == []
    for bad in ("8,6", "0,3", "six"):
        with pytest.raises(argparse.ArgumentTypeError, match="--lr-milestones"):
            parse_milestones(bad)
    out = tmp_path / "r"
    assert main(["train", "--rule", "bp", "--dataset", "digits", "--epochs", "3", "--arch", "16",
                 "--lr", "0.1", "--lr-milestones", "1,2", "--lr-gamma", "0.5", "--quiet",
                 "--weight-decay", "0.03", "--weight-decay-after-first-epoch", "1e-4",
                 "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert (config["training"]["weight_decay"], config["training"]["weight_decay_after_first_epoch"]) == (0.03, 1e-4)
    lrs = [float(r["lr"]) for r in read_csv_rows(out / "metrics.csv")]
    assert lrs == pytest.approx([0.1, 0.05, 0.025])
    assert main(["train", "--dataset", "digits", "--lr-gamma", "0", "--quiet",
                 "--out", str(tmp_path / "bad")]) == 2
    assert "lr_gamma" in capsys.readouterr().err
