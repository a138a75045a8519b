"""Synthetic tasks: DRTP's (Frenkel et al. 2021) regression and classification, and an erf teacher-student task.

All draws come from ``numpy.random.default_rng(seed)`` (scikit-learn's ``random_state=seed``
for drtp-classification); inputs are float32 (N, dim), the first ``n_train`` rows train.
"""

from __future__ import annotations

import numpy as np
from scipy.special import erf
from sklearn.datasets import make_classification

from neurosim.datasets import Dataset

COSINE_OUTPUTS = 10


def _split(name, x, y, n_train, n_classes, task) -> Dataset:
    return Dataset(name, x[:n_train], y[:n_train], x[n_train:], y[n_train:], n_classes, x.shape[1:], task)


def cosine_regression(seed: int = 0, n_train: int = 5000, n_test: int = 1000, dim: int = 256) -> Dataset:
    """Per example, mu ~ U(-pi, pi) and x_i ~ N(mu, 1); targets y_j = cos(mean(x) + phi_j),
    phi_j = -pi/2 + j*pi/9 for j = 0..9 (float32 (N, 10))."""
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    mu = rng.uniform(-np.pi, np.pi, size=(n, 1))
    x = mu + rng.standard_normal((n, dim))
    phi = -np.pi / 2 + np.arange(COSINE_OUTPUTS) * np.pi / 9
    y = np.cos(x.mean(axis=1, keepdims=True) + phi)
    return _split("cosine-regression", x.astype(np.float32), y.astype(np.float32), n_train, 0, "regression")


def drtp_classification(seed: int = 0, n_train: int = 25000, n_test: int = 5000) -> Dataset:
    """scikit-learn ``make_classification``: 256 features (128 informative), 10 classes,
    5 clusters per class, class_sep 4.5; int64 labels."""
    x, y = make_classification(
        n_samples=n_train + n_test, n_features=256, n_informative=128, n_classes=10,
        n_clusters_per_class=5, class_sep=4.5, random_state=seed,
    )
    return _split("drtp-classification", x.astype(np.float32), y.astype(np.int64), n_train, 10, "classification")


def teacher_student(
    seed: int = 0, n_train: int = 10000, n_test: int = 2000, dim: int = 500, hidden: int = 2
) -> Dataset:
    """x ~ N(0, I_dim); y = W2 . erf(W1 x / sqrt(dim)) with teacher W1 (hidden x dim) and
    W2 (1 x hidden) ~ N(0, 1), drawn before x; targets float32 (N, 1)."""
    rng = np.random.default_rng(seed)
    w1 = rng.standard_normal((hidden, dim))
    w2 = rng.standard_normal((1, hidden))
    x = rng.standard_normal((n_train + n_test, dim))
    y = erf(x @ w1.T / np.sqrt(dim)) @ w2.T
    return _split("teacher-student", x.astype(np.float32), y.astype(np.float32), n_train, 0, "regression")


GENERATORS = {
    "cosine-regression": cosine_regression,
    "drtp-classification": drtp_classification,
    "teacher-student": teacher_student,
}


def load_synthetic(name: str, seed: int = 0, **sizes) -> Dataset:
    """Generate synthetic task ``name`` (a key of :data:`GENERATORS`); ``sizes`` go to its generator."""
    if name not in GENERATORS:
        raise ValueError(f"unknown synthetic dataset {name!r}; known: {', '.join(GENERATORS)}")
    return GENERATORS[name](seed=seed, **sizes)
