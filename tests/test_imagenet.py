"""Streamed ImageNet training: transforms, the DataLoader, and ``neurosim train --dataset imagenet``."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from neurosim.cli import main
from neurosim.datasets import ImageFolder
from rate_models.imagenet import (IMAGENET_MEAN, IMAGENET_STD, ImageNetDataset, eval_transform, make_loader,
                                  random_resized_box, sample_rng, train_transform)

SIZES = [(40, 60), (300, 200), (64, 64), (120, 90)]


def make_tree(root, classes=3, per_class=4, val_per_class=2):
    """``root/{train,val}/<class>/*.JPEG`` of random pixels and sizes; returns ``root``."""
    rng = np.random.default_rng(0)
    for split, n in (("train", per_class), ("val", val_per_class)):
        for c in range(classes):
            d = root / split / f"n{c:08d}"
            d.mkdir(parents=True)
            for k in range(n):
                w, h = SIZES[(c + k) % len(SIZES)]
                Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(d / f"img{k}.JPEG")
    return root


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return make_tree(tmp_path_factory.mktemp("imagenet"))


def test_transforms_shape_and_normalization(tree):
    folder = ImageFolder(tree, "train")
    for path, _ in folder.samples[:4]:
        with Image.open(path) as img:
            for x in (train_transform(img, 224, sample_rng(0, 0, 0)), eval_transform(img, 224)):
                assert x.shape == (3, 224, 224) and x.dtype == torch.float32
                lo = (0 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
                hi = (1 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
                assert (x.amin((1, 2)) >= lo - 1e-5).all() and (x.amax((1, 2)) <= hi + 1e-5).all()


def test_random_resized_box_bounds_and_fallback():
    rng = np.random.default_rng(1)
    for _ in range(200):
        left, top, w, h = random_resized_box(300, 200, rng)
        assert 0 <= left and left + w <= 300 and 0 <= top and top + h <= 200
        assert 0.08 * 300 * 200 * 0.9 <= w * h <= 300 * 200
    # a 1000x10 strip: no box with ratio in [3/4, 4/3] and area >= 8% fits -> centre crop of ratio 4/3
    assert random_resized_box(1000, 10, np.random.default_rng(0)) == ((1000 - 13) // 2, 0, 13, 10)


def test_train_transform_reproducible_and_varies(tree):
    ds = ImageNetDataset(ImageFolder(tree, "train"), 32, augment=True)
    x0, y0 = ds[(0, 0, 5)]
    assert torch.equal(x0, ds[(0, 0, 5)][0]) and y0 == ds[(0, 0, 5)][1]
    assert not torch.equal(x0, ds[(1, 0, 5)][0])  # another seed
    assert not torch.equal(x0, ds[(0, 1, 5)][0])  # another epoch


def test_flip_is_a_mirror(tree):
    """Two draws that differ only in the flip give mirrored images."""
    path = ImageFolder(tree, "train").samples[1][0]

    class Draws:  # a generator replaying fixed draws: the crop box of the whole image, then the flip
        def __init__(self, flip):
            self.flip = flip

        def uniform(self, lo, hi):
            return hi if hi == 1.0 else 0.0  # scale 1, log-ratio 0 (ratio 1)

        def integers(self, lo, hi):
            return lo

        def random(self):
            return 0.0 if self.flip else 0.9

    with Image.open(path) as img:
        a, b = train_transform(img, 32, Draws(False)), train_transform(img, 32, Draws(True))
    assert torch.allclose(a.flip(-1), b)


def test_eval_transform_deterministic_centre_crop(tree):
    path = tree / "val" / "n00000001" / "img0.JPEG"  # 300x200 (class 1, k 0 -> SIZES[1])
    with Image.open(path) as img:
        assert img.size == (300, 200)
        x = eval_transform(img, 224)
        assert torch.equal(x, eval_transform(img, 224))
        resized = img.convert("RGB").resize((384, 256), Image.BILINEAR)
        expected = np.asarray(resized.crop((80, 16, 304, 240)), dtype=np.float32) / 255
    expected = (torch.from_numpy(expected).permute(2, 0, 1) - torch.tensor(IMAGENET_MEAN).view(3, 1, 1)) \
        / torch.tensor(IMAGENET_STD).view(3, 1, 1)
    assert torch.allclose(x, expected, atol=1e-6)


def test_loader_workers_give_the_same_batches(tree):
    ds = ImageNetDataset(ImageFolder(tree, "train"), 32, augment=True)

    def batches(workers, epoch):
        loader = make_loader(ds, 5, seed=3, workers=workers, device="cpu")
        loader.sampler.set_epoch(epoch)
        return [(x.clone(), y.clone()) for x, y in loader]

    one, two = batches(0, 1), batches(2, 1)
    assert len(one) == 3 and [len(y) for _, y in one] == [5, 5, 2]
    for (xa, ya), (xb, yb) in zip(one, two):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    other = batches(0, 2)
    assert not all(torch.equal(ya, yb) for (_, ya), (_, yb) in zip(one, other))


def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_train_imagenet_end_to_end_and_resume(tree, tmp_path):
    out = tmp_path / "run"
    args = ["train", "--dataset", "imagenet", "--data-dir", str(tree), "--arch", "resnet18", "--rule", "bp",
            "--batch-size", "4", "--workers", "0", "--image-size", "32", "--lr", "0.001", "--quiet",
            "--out", str(out)]
    assert main(args + ["--epochs", "1"]) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["data"]["dataset"] == "imagenet" and cfg["streaming"]["image_size"] == 32 and cfg["streaming"]["workers"] == 0
    rows = _rows(out / "metrics.csv")
    assert len(rows) == 1 and rows[0]["epoch"] == "1"
    for key in ("train_loss", "train_accuracy", "test_loss", "test_accuracy", "train_step_loss"):
        assert np.isfinite(float(rows[0][key]))
    assert (out / "summary.json").exists() and (out / "checkpoints" / "seed0.pt").exists()
    first = torch.load(out / "checkpoints" / "seed0.pt", weights_only=True)
    assert first["epoch"] == 1 and {"rule", "optimizer", "scheduler"} <= set(first)

    # resume needs the same configuration: rerun the 2-epoch run from scratch, then resume a copy
    assert main(args + ["--epochs", "2", "--out", str(tmp_path / "straight")]) == 0
    shutil.copytree(out, tmp_path / "resumed")
    cfg["training"]["epochs"] = 2
    (tmp_path / "resumed" / "config.json").write_text(json.dumps(cfg))
    assert main(args + ["--epochs", "2", "--out", str(tmp_path / "resumed"), "--resume"]) == 0
    straight, resumed = _rows(tmp_path / "straight" / "metrics.csv"), _rows(tmp_path / "resumed" / "metrics.csv")
    assert [r["epoch"] for r in resumed] == ["1", "2"]
    for key in ("train_step_loss", "test_loss", "train_loss"):
        assert float(resumed[1][key]) == pytest.approx(float(straight[1][key]), rel=1e-5)


def test_bad_input_errors(tree, tmp_path, capsys):
    base = ["train", "--dataset", "imagenet", "--arch", "resnet18", "--rule", "bp", "--epochs", "1",
            "--workers", "0", "--image-size", "32", "--quiet", "--out", str(tmp_path / "run")]
    assert main(base) == 2
    assert "--data-dir" in capsys.readouterr().err
    missing = tmp_path / "noval"
    shutil.copytree(tree / "train", missing / "train")
    assert main(base + ["--data-dir", str(missing)]) == 2
    assert "val: split folder not found" in capsys.readouterr().err
    empty = tmp_path / "empty"
    for split in ("train", "val"):
        (empty / split / "n0").mkdir(parents=True)
        (empty / split / "n0" / "notes.txt").write_text("no image")
    assert main(base + ["--data-dir", str(empty)]) == 2
    assert "no image files" in capsys.readouterr().err
