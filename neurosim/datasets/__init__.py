"""Datasets as numpy arrays: ``load_dataset(name)`` returns a :class:`Dataset`.

Inputs are float32 arrays of shape ``(N, *sample_shape)``; image pixels are scaled to
[0, 1] and laid out channels-first (N, C, H, W). Class labels are int64 indices in
[0, n_classes); regression targets are float32 arrays of shape (N, k).
This package uses numpy, scipy, scikit-learn and Pillow only (no torch, no brian2).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from neurosim.datasets.imagenet import ImageFolder

__all__ = ["DATASETS", "Dataset", "ImageFolder", "load_dataset"]

TASKS = ("classification", "regression")

DATASETS = {
    "digits": "scikit-learn 8x8 handwritten digits, 10 classes, stratified 1437/360 split",
    "mnist": "MNIST 28x28 handwritten digits, 10 classes, 60000/10000 (IDX files)",
    "fashion-mnist": "Fashion-MNIST 28x28 clothing images, 10 classes, 60000/10000 (IDX files)",
    "cifar10": "CIFAR-10 32x32 colour images, 10 classes, 50000/10000",
    "cifar100": "CIFAR-100 32x32 colour images, 100 fine (or 20 coarse) classes, 50000/10000",
    "cosine-regression": "DRTP synthetic regression: 256-d inputs, 10 cosine targets, 5000/1000",
    "drtp-classification": "DRTP synthetic classification: 256-d inputs, 10 classes, 25000/5000",
    "teacher-student": "erf teacher network, x ~ N(0, I_500), scalar target, 10000/2000",
}


@dataclass(frozen=True, eq=False)
class Dataset:
    """A train/test split held in memory.

    ``x_*``: float32 ``(N, *sample_shape)``. ``y_*``: int64 (N,) class labels when
    ``task == "classification"``, float32 (N, k) targets when ``task == "regression"``
    (then ``n_classes == 0``).
    """

    name: str
    x_train: np.ndarray = field(repr=False)
    y_train: np.ndarray = field(repr=False)
    x_test: np.ndarray = field(repr=False)
    y_test: np.ndarray = field(repr=False)
    n_classes: int
    sample_shape: tuple
    task: str

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"{self.name}: task must be one of {TASKS}, got {self.task!r}")
        for split, x, y in (("train", self.x_train, self.y_train), ("test", self.x_test, self.y_test)):
            if x.shape[1:] != tuple(self.sample_shape):
                raise ValueError(
                    f"{self.name}: x_{split} has shape {x.shape}, expected (N, *{tuple(self.sample_shape)})"
                )
            if len(x) != len(y):
                raise ValueError(f"{self.name}: {len(x)} {split} inputs but {len(y)} {split} targets")

    @property
    def input_dim(self) -> int:
        """Number of input features per sample (product of ``sample_shape``)."""
        return int(np.prod(self.sample_shape))


def load_dataset(name: str, data_dir=None, download=None, seed: int = 0, **options) -> Dataset:
    """Load dataset ``name`` (a key of :data:`DATASETS`).

    ``data_dir``: folder holding the files (mnist, fashion-mnist, cifar10, cifar100).
    ``download``: MNIST/Fashion-MNIST only; None tries when files are missing, False never,
    True raises if the download fails. ``seed``: split / generator seed (digits, synthetic).
    ``options`` go to the loader, e.g. ``test_fraction`` (digits), ``verify`` (IDX),
    ``label="coarse"`` (cifar100), ``n_train``/``n_test``/``dim`` (synthetic).
    """
    # Loaders are imported on demand: scikit-learn is slow to import and most runs need one set.
    if name == "digits":
        from neurosim.datasets.digits import load_digits

        return load_digits(seed=seed, **options)
    if name in ("mnist", "fashion-mnist"):
        from neurosim.datasets.idx import load_idx_dataset

        return load_idx_dataset(name, data_dir, download=download, **options)
    if name in ("cifar10", "cifar100"):
        from neurosim.datasets.cifar import load_cifar

        return load_cifar(name, data_dir, **options)
    if name in ("cosine-regression", "drtp-classification", "teacher-student"):
        from neurosim.datasets.synthetic import load_synthetic

        return load_synthetic(name, seed=seed, **options)
    raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
