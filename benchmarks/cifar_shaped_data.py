"""Write a CIFAR-10-shaped data set made of real Fashion-MNIST images, for checking CIFAR claims
(ResNet-20 accuracy, PFA vs BP) where CIFAR-10 itself cannot be downloaded.

The files follow the published CIFAR-10 python layout (``cifar-10-batches-py/data_batch_1..5``,
``test_batch``, ``batches.meta``), so ``neurosim train --dataset cifar10 --data-dir OUT`` reads them
unchanged. Each 28×28 grey image is zero-padded by 2 pixels per side to 32×32 and copied into the
R, G and B planes. Class-balanced random subsets (seeded) keep CPU runs short. It is NOT CIFAR-10:
results on it say how the rules compare on a 32×32×3 ResNet input, not what they reach on CIFAR.

    python benchmarks/cifar_shaped_data.py --fashion-mnist DIR --out OUT [--n-train 10000 --n-test 2000]
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import numpy as np

from neurosim.datasets.idx import load_idx_dataset
from neurosim.io import atomic_write_text

CLASSES = [b"t-shirt/top", b"trouser", b"pullover", b"dress", b"coat",
           b"sandal", b"shirt", b"sneaker", b"bag", b"ankle boot"]
TRAIN_FILES = 5


def balanced_subset(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n // 10 random indices of each class, shuffled."""
    idx = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:n // 10] for c in range(10)])
    return rng.permutation(idx)


def cifar_rows(images: np.ndarray) -> np.ndarray:
    """(N, 1, 28, 28) floats in [0, 1] -> (N, 3072) uint8 rows: R, G, B planes of 32×32, row-major."""
    grey = np.rint(images[:, 0] * 255).astype(np.uint8)
    padded = np.pad(grey, ((0, 0), (2, 2), (2, 2)))
    return np.ascontiguousarray(np.repeat(padded[:, None], 3, axis=1).reshape(len(images), 3072))


def write_pickle(path: Path, obj: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(pickle.dumps(obj, protocol=2))
    tmp.replace(path)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fashion-mnist", required=True, help="folder with the four Fashion-MNIST IDX files")
    p.add_argument("--out", required=True, help="output folder (gets cifar-10-batches-py/)")
    p.add_argument("--n-train", type=int, default=10000)
    p.add_argument("--n-test", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    if a.n_train <= 0 or a.n_train % (10 * TRAIN_FILES) or not 0 < a.n_train <= 60000:
        p.error(f"--n-train {a.n_train}: give a multiple of 50 up to 60000 (5 files × 10 classes)")
    if a.n_test <= 0 or a.n_test % 10 or a.n_test > 10000:
        p.error(f"--n-test {a.n_test}: give a multiple of 10 up to 10000")
    data = load_idx_dataset("fashion-mnist", a.fashion_mnist)
    rng = np.random.default_rng(a.seed)
    train = balanced_subset(data.y_train, a.n_train, rng)
    test = balanced_subset(data.y_test, a.n_test, rng)
    folder = Path(a.out) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rows, labels, per = cifar_rows(data.x_train[train]), data.y_train[train], a.n_train // TRAIN_FILES
    for b in range(TRAIN_FILES):
        part = slice(b * per, (b + 1) * per)
        write_pickle(folder / f"data_batch_{b + 1}", {
            b"batch_label": f"training batch {b + 1} of {TRAIN_FILES}".encode(),
            b"labels": labels[part].tolist(), b"data": rows[part],
            b"filenames": [f"fashion_mnist_train_{i:05d}.png".encode() for i in train[part]]})
    write_pickle(folder / "test_batch", {
        b"batch_label": b"testing batch 1 of 1", b"labels": data.y_test[test].tolist(),
        b"data": cifar_rows(data.x_test[test]),
        b"filenames": [f"fashion_mnist_test_{i:05d}.png".encode() for i in test]})
    write_pickle(folder / "batches.meta", {b"num_cases_per_batch": per, b"label_names": CLASSES,
                                           b"num_vis": 3072})
    atomic_write_text(Path(a.out) / "SOURCE.txt",
                      f"CIFAR-10-shaped data made of Fashion-MNIST ({a.fashion_mnist}), NOT CIFAR-10: 28x28 "
                      f"grey padded to 32x32, copied to RGB; class-balanced subsets (seed {a.seed}) of "
                      f"{a.n_train} training and {a.n_test} test images.\n")
    print(f"wrote {folder}: {a.n_train} training images in {TRAIN_FILES} files, {a.n_test} test images")


if __name__ == "__main__":
    main()
