"""MNIST and Fashion-MNIST from the four official IDX ``.gz`` files.

IDX format: a 4-byte big-endian magic number ``0x00 0x00 0x08 <ndim>`` (0x08 = unsigned
byte), ``ndim`` big-endian uint32 sizes, then the data in row-major order. Image files
have magic 2051 and shape (N, rows, cols); label files magic 2049 and shape (N,).
Loaded images are float32 in [0, 1] with shape (N, 1, 28, 28); labels int64 in 0..9.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
import urllib.request
from pathlib import Path

import numpy as np

from neurosim.datasets import Dataset

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
MD5 = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
}
MIRRORS = {
    "mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "fashion-mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
}
TORCHVISION_FOLDERS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
DOWNLOAD_TIMEOUT_S = 60


def read_idx(path, expected_magic: int | None = None) -> np.ndarray:
    """Read a gzip-compressed unsigned-byte IDX file into a read-only uint8 array of the header's shape."""
    path = Path(path)
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise ValueError(
            f"{path}: cannot decompress ({e}); the file is truncated or not a gzip-compressed IDX file. "
            "Delete it and fetch it again."
        ) from e
    if len(raw) < 4:
        raise ValueError(f"{path}: truncated file: {len(raw)} bytes, shorter than the 4-byte IDX magic number")
    magic = int.from_bytes(raw[:4], "big")
    ndim = raw[3]
    if raw[:3] != b"\x00\x00\x08" or ndim == 0 or expected_magic not in (None, magic):
        expected = expected_magic or f"{LABELS_MAGIC} (labels) or {IMAGES_MAGIC} (images)"
        raise ValueError(f"{path}: wrong magic number {magic}, expected {expected}; not the right IDX file")
    start = 4 + 4 * ndim
    if len(raw) < start:
        raise ValueError(f"{path}: truncated file: {len(raw)} bytes, shorter than its {start}-byte IDX header")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, 4))
    size = int(np.prod(shape))
    found = len(raw) - start
    if found < size:
        raise ValueError(
            f"{path}: truncated file: the header says shape {shape} = {size} data bytes, only {found} follow"
        )
    if found > size:
        raise ValueError(f"{path}: {found - size} unexpected bytes after the {size} data bytes of shape {shape}")
    return np.frombuffer(raw, np.uint8, size, start).reshape(shape)


def md5sum(path) -> str:
    """Hex md5 digest of a file, read in 1 MiB chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_md5(path, expected: str, label=None) -> None:
    """Raise ValueError when the md5 of ``path`` differs from ``expected``; ``label`` names it in the message."""
    got = md5sum(path)
    if got != expected:
        raise ValueError(
            f"{label or path}: md5 checksum mismatch: expected {expected}, got {got}; "
            "the file is corrupt or not the official one. Delete it and fetch it again."
        )


def cache_dir(name: str) -> Path:
    """Download folder used when no data_dir is given: ``~/.cache/neurosim/<name>``."""
    return Path.home() / ".cache" / "neurosim" / name


def candidate_dirs(name: str, data_dir=None) -> list[Path]:
    """Folders searched, in order, for the four files of dataset ``name``."""
    roots = [Path(data_dir)] if data_dir is not None else []
    if data_dir is None and os.environ.get("NEUROSIM_DATA"):
        roots.append(Path(os.environ["NEUROSIM_DATA"]))
    dirs = [d for root in roots for d in (root, root / name, root / TORCHVISION_FOLDERS[name] / "raw")]
    if data_dir is None:
        dirs += [cache_dir(name), Path.cwd().parent / "shared" / "data" / name]
        if name == "fashion-mnist":
            dirs.append(Path("/usr/share/datasets/fashion-mnist"))
    return dirs


def download_files(name: str, dest: Path, expected_md5: dict) -> None:
    """Fetch the four files from the official mirror into ``dest`` (temp file, md5 check, atomic rename)."""
    for fname in FILES.values():
        target = dest / fname
        if target.is_file() and md5sum(target) == expected_md5[fname]:
            continue
        url = MIRRORS[name] + fname
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            dest.mkdir(parents=True, exist_ok=True)  # only once the mirror answers: no empty folders offline
            fd, tmp = tempfile.mkstemp(prefix=f".{fname}.", suffix=".part", dir=dest)
            try:
                with os.fdopen(fd, "wb") as out:
                    shutil.copyfileobj(response, out)
                check_md5(tmp, expected_md5[fname], label=f"download of {url}")
                os.replace(tmp, target)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)


def find_folder(name: str, data_dir=None, download=None, expected_md5=None) -> Path:
    """First searched folder holding all four files, downloading into one when allowed.

    ``download``: None tries when files are missing and reports a failure in the
    FileNotFoundError; True re-raises the download error; False never downloads.
    """
    dirs = candidate_dirs(name, data_dir)
    for folder in dirs:
        if all((folder / f).is_file() for f in FILES.values()):
            return folder
    reason = "download=False, so nothing was downloaded"
    if download is not False:
        dest = Path(data_dir) / name if data_dir is not None else cache_dir(name)
        try:
            download_files(name, dest, expected_md5 or MD5[name])
            return dest
        except (OSError, ValueError) as e:
            if download:
                raise
            reason = f"downloading from {MIRRORS[name]} failed: {e}"
    searched = "\n".join(f"  {d}" for d in dirs)
    raise FileNotFoundError(
        f"{name}: none of these folders holds all four IDX files:\n{searched}\n"
        f"Expected files: {', '.join(FILES.values())}.\n({reason}.)\n"
        f"Put the four files in one folder and pass --data-dir DIR (data_dir=DIR in Python), "
        f"where DIR is that folder or its parent with a '{name}/' subfolder."
    )


def load_idx_dataset(name: str, data_dir=None, verify: bool = True, download=None, expected_md5=None) -> Dataset:
    """Load ``mnist`` or ``fashion-mnist`` from IDX ``.gz`` files.

    ``verify`` checks each file's md5 against ``expected_md5`` (default :data:`MD5` ``[name]``,
    a dict file name -> hex digest). Images float32 (N, 1, rows, cols) in [0, 1], labels int64.
    """
    if name not in MD5:
        raise ValueError(f"unknown IDX dataset {name!r}; known: {', '.join(MD5)}")
    expected_md5 = MD5[name] if expected_md5 is None else expected_md5
    folder = find_folder(name, data_dir, download, expected_md5)
    paths = {key: folder / fname for key, fname in FILES.items()}
    if verify:
        for path in paths.values():
            check_md5(path, expected_md5[path.name])
    splits = []
    for split in ("train", "test"):
        images = read_idx(paths[f"{split}_images"], IMAGES_MAGIC)
        labels = read_idx(paths[f"{split}_labels"], LABELS_MAGIC)
        if len(images) != len(labels):
            raise ValueError(
                f"{paths[f'{split}_images']} holds {len(images)} images but {paths[f'{split}_labels']} holds "
                f"{len(labels)} labels; the two files do not belong together"
            )
        splits += [images[:, None].astype(np.float32) / np.float32(255), labels.astype(np.int64)]
    x_train, y_train, x_test, y_test = splits
    return Dataset(name, x_train, y_train, x_test, y_test, 10, x_train.shape[1:], "classification")
