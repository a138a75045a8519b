"""scikit-learn's 8x8 handwritten digits (1797 images, 10 classes) with a seeded stratified split."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits as sklearn_digits
from sklearn.model_selection import train_test_split

from neurosim.datasets import Dataset


def load_digits(seed: int = 0, test_fraction: float = 0.2) -> Dataset:
    """Digits as float32 (N, 1, 8, 8) in [0, 1] (raw 0..16 divided by 16), int64 labels.

    The split is stratified by class; the default 0.2 gives 1437 train / 360 test.
    """
    bunch = sklearn_digits()
    x = (bunch.images / 16.0).astype(np.float32)[:, None, :, :]
    y = bunch.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_fraction, random_state=seed, stratify=y
    )
    return Dataset("digits", x_train, y_train, x_test, y_test, 10, (1, 8, 8), "classification")
