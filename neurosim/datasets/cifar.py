"""CIFAR-10 and CIFAR-100 from the published binary or python versions, extracted or as ``.tar.gz``.

Each image is 3072 bytes: the red, green and blue 32x32 planes in row-major order.
Binary records prefix it with 1 label byte (CIFAR-10) or a coarse and a fine label byte
(CIFAR-100); python batches are pickled dicts with bytes keys (b'data': uint8 N x 3072,
b'labels' or b'fine_labels' / b'coarse_labels'). Loaded images are float32 in [0, 1],
shape (N, 3, 32, 32); labels int64. No automatic download: get the files from
https://www.cs.toronto.edu/~kriz/cifar.html.
"""

from __future__ import annotations

import codecs
import io
import os
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurosim.datasets import Dataset

try:
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy < 2
    from numpy.core.multiarray import _reconstruct

URL = "https://www.cs.toronto.edu/~kriz/cifar.html"
PIXELS = 3 * 32 * 32


@dataclass(frozen=True)
class Layout:
    """One published version: folder name inside the archive, archive name, batch file names."""

    kind: str  # "binary" | "python"
    folder: str
    archive: str
    train: tuple
    test: tuple


LAYOUTS = {
    "cifar10": (
        Layout("binary", "cifar-10-batches-bin", "cifar-10-binary.tar.gz",
               tuple(f"data_batch_{i}.bin" for i in range(1, 6)), ("test_batch.bin",)),
        Layout("python", "cifar-10-batches-py", "cifar-10-python.tar.gz",
               tuple(f"data_batch_{i}" for i in range(1, 6)), ("test_batch",)),
    ),
    "cifar100": (
        Layout("binary", "cifar-100-binary", "cifar-100-binary.tar.gz", ("train.bin",), ("test.bin",)),
        Layout("python", "cifar-100-python", "cifar-100-python.tar.gz", ("train",), ("test",)),
    ),
}


@dataclass(frozen=True)
class LabelSpec:
    """Where the wanted label sits: binary label-byte count and column, python dict key, class count."""

    n_label_bytes: int
    column: int
    key: bytes
    n_classes: int


LABELS = {
    ("cifar10", None): LabelSpec(1, 0, b"labels", 10),
    ("cifar100", "fine"): LabelSpec(2, 1, b"fine_labels", 100),
    ("cifar100", "coarse"): LabelSpec(2, 0, b"coarse_labels", 20),
}

SAFE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,  # bytes in protocol-2 pickles written by Python 3
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the numpy/codecs globals CIFAR python batches need."""

    def __init__(self, file, source: str):
        super().__init__(file, encoding="bytes")
        self.source = source

    def find_class(self, module, name):
        if (module, name) not in SAFE_GLOBALS:
            raise pickle.UnpicklingError(
                f"{self.source}: refused: it calls {module}.{name}, and official CIFAR batches hold "
                f"only numpy arrays, lists and bytes, so this file is not one"
            )
        return SAFE_GLOBALS[(module, name)]


def _roots(name: str, data_dir) -> list[Path]:
    if data_dir is not None:
        return [Path(data_dir), Path(data_dir) / name]
    roots = []
    if os.environ.get("NEUROSIM_DATA"):
        roots += [Path(os.environ["NEUROSIM_DATA"]), Path(os.environ["NEUROSIM_DATA"]) / name]
    return roots + [Path.home() / ".cache" / "neurosim" / name, Path.cwd().parent / "shared" / "data" / name]


def _read_archive(archive: Path, layout: Layout) -> dict:
    """Members ``layout.folder/<file>`` of a .tar.gz, read into memory in one pass (nothing extracted)."""
    wanted = {f"{layout.folder}/{f}": f for f in layout.train + layout.test}
    files = {}
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            key = member.name.removeprefix("./")
            if key in wanted and member.isfile():
                files[wanted[key]] = (f"{archive}:{key}", tar.extractfile(member).read())
    missing = sorted(set(wanted) - {f"{layout.folder}/{f}" for f in files})
    if missing:
        raise ValueError(f"{archive}: archive lacks members {', '.join(missing)}; is it the official {layout.archive}?")
    return files


def _find_files(name: str, data_dir) -> tuple[Layout, dict]:
    """Locate a layout and return it with ``{file name: (description, bytes)}`` of its batches."""
    roots = _roots(name, data_dir)
    for root in roots:
        for layout in LAYOUTS[name]:
            for folder in (root / layout.folder, root):
                paths = [folder / f for f in layout.train + layout.test]
                if all(p.is_file() for p in paths):
                    return layout, {p.name: (str(p), p.read_bytes()) for p in paths}
        for layout in LAYOUTS[name]:
            archive = root if root.name == layout.archive else root / layout.archive
            if archive.is_file():
                return layout, _read_archive(archive, layout)
    expected = "\n".join(
        f"  {lay.folder}/ with {', '.join(lay.train + lay.test)}  (or the archive {lay.archive})"
        for lay in LAYOUTS[name]
    )
    searched = "\n".join(f"  {r}" for r in roots)
    raise FileNotFoundError(
        f"{name}: no CIFAR files found in:\n{searched}\nExpected one of these layouts:\n{expected}\n"
        f"Download the binary or python version from {URL} (no automatic download) and pass "
        f"--data-dir DIR (data_dir=DIR in Python), DIR being the extracted folder, its parent, "
        f"or the folder holding the .tar.gz."
    )


def _decode_binary(source: str, raw: bytes, spec: LabelSpec) -> tuple[np.ndarray, np.ndarray]:
    record = spec.n_label_bytes + PIXELS
    if len(raw) % record:
        raise ValueError(
            f"{source}: {len(raw)} bytes is not a multiple of the {record}-byte record "
            f"({spec.n_label_bytes} label byte(s) + {PIXELS} pixel bytes); the file is truncated "
            f"or from the other CIFAR dataset. Get the dataset from {URL}"
        )
    table = np.frombuffer(raw, np.uint8).reshape(-1, record)
    return table[:, spec.n_label_bytes:], table[:, spec.column]


def _decode_python(source: str, raw: bytes, spec: LabelSpec) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch = RestrictedUnpickler(io.BytesIO(raw), source).load()
    except pickle.UnpicklingError as err:  # a foreign global (refused before it ran) or bad bytes
        message = str(err) if str(err).startswith(source) else f"{source}: damaged pickle ({err})"
        raise ValueError(f"{message}; nothing in it ran. Get the dataset from {URL}") from None
    except (EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError, UnicodeDecodeError) as err:
        raise ValueError(f"{source}: not a readable CIFAR python batch ({type(err).__name__}: {err}); "
                         f"the file is truncated or damaged. Get the dataset from {URL}") from None
    if not isinstance(batch, dict) or b"data" not in batch or spec.key not in batch:
        raise ValueError(f"{source}: not a CIFAR python batch (expected a dict with keys b'data' and {spec.key!r})")
    data = np.asarray(batch[b"data"], dtype=np.uint8)
    labels = np.asarray(batch[spec.key])
    if data.ndim != 2 or data.shape[1] != PIXELS or len(labels) != len(data):
        raise ValueError(
            f"{source}: b'data' has shape {data.shape} and {spec.key!r} {len(labels)} entries; "
            f"expected (N, {PIXELS}) and N"
        )
    return data, labels


def load_cifar(name: str, data_dir=None, label: str | None = None) -> Dataset:
    """Load ``cifar10`` or ``cifar100`` (``label="fine"`` (default, 100 classes) or ``"coarse"`` (20)).

    ``data_dir``: the extracted folder, its parent, the folder holding the ``.tar.gz``, or the archive.
    """
    if name not in LAYOUTS:
        raise ValueError(f"unknown CIFAR dataset {name!r}; known: {', '.join(LAYOUTS)}")
    if name == "cifar100":
        label = label or "fine"
    if (name, label) not in LABELS:
        allowed = "'fine' or 'coarse'" if name == "cifar100" else "not set (CIFAR-10 has one label)"
        raise ValueError(f"{name}: label={label!r} is invalid; it must be {allowed}")
    spec = LABELS[(name, label)]
    layout, files = _find_files(name, data_dir)
    decode = _decode_binary if layout.kind == "binary" else _decode_python
    splits = []
    for names in (layout.train, layout.test):
        parts = [decode(*files[f], spec) for f in names]
        pixels = np.concatenate([p for p, _ in parts])
        labels = np.concatenate([lab for _, lab in parts]).astype(np.int64)
        if labels.size and not 0 <= labels.min() <= labels.max() < spec.n_classes:
            raise ValueError(
                f"{name}: labels in {', '.join(names)} span {labels.min()}..{labels.max()}, "
                f"outside 0..{spec.n_classes - 1}; the files are not {name}"
            )
        splits += [pixels.reshape(-1, 3, 32, 32).astype(np.float32) / np.float32(255), labels]
    x_train, y_train, x_test, y_test = splits
    return Dataset(name, x_train, y_train, x_test, y_test, spec.n_classes, (3, 32, 32), "classification")
