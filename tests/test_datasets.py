"""Dataset loaders, tested on small files generated in tmp_path (no network)."""

import gzip
import importlib.util
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from neurosim.datasets import DATASETS, Dataset, ImageFolder, load_dataset
from neurosim.datasets import idx
from neurosim.datasets.cifar import LAYOUTS, load_cifar

REAL_MNIST = Path("/work/shared/data/mnist")


@pytest.fixture(autouse=True)
def no_default_folders(tmp_path, monkeypatch):
    """Keep the default search (env var, ~/.cache, ../shared/data) away from real files and the network."""
    monkeypatch.delenv("NEUROSIM_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(idx.MIRRORS, "mnist", (tmp_path / "no-mirror").as_uri() + "/")


# ---------------------------------------------------------------- IDX


def write_idx(path, array, magic=None):
    """Write a uint8 array as a gzip IDX file; ``magic`` overrides the header's magic number."""
    array = np.asarray(array, dtype=np.uint8)
    magic = 0x0800 + array.ndim if magic is None else magic
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.tobytes())


def write_mnist(folder, n_train=6, n_test=4, seed=0):
    """Four small IDX files in ``folder``; returns the arrays written."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28)),
        "train_labels": rng.integers(0, 10, n_train),
        "test_images": rng.integers(0, 256, (n_test, 28, 28)),
        "test_labels": rng.integers(0, 10, n_test),
    }
    for key, array in arrays.items():
        write_idx(folder / idx.FILES[key], array)
    return arrays


def md5_table(folder):
    return {f: idx.md5sum(folder / f) for f in idx.FILES.values()}


def test_idx_round_trip(tmp_path):
    arrays = write_mnist(tmp_path / "mnist")
    data = idx.load_idx_dataset("mnist", tmp_path, verify=False, download=False)
    assert data.x_train.dtype == np.float32 and data.x_train.shape == (6, 1, 28, 28)
    assert data.y_train.dtype == np.int64 and data.sample_shape == (1, 28, 28) and data.input_dim == 784
    np.testing.assert_array_equal(data.x_train[:, 0] * 255, arrays["train_images"])
    np.testing.assert_array_equal(data.x_test[:, 0] * 255, arrays["test_images"])
    np.testing.assert_array_equal(data.y_train, arrays["train_labels"])
    np.testing.assert_array_equal(data.y_test, arrays["test_labels"])
    np.testing.assert_array_equal(idx.read_idx(tmp_path / "mnist" / idx.FILES["test_labels"]), arrays["test_labels"])


def test_idx_checksum_verified_against_table(tmp_path):
    folder = tmp_path / "mnist"
    write_mnist(folder)
    table = md5_table(folder)
    assert load_dataset("mnist", data_dir=folder, expected_md5=table).n_classes == 10
    bad = dict(table, **{idx.FILES["train_labels"]: "0" * 32})
    wrong = r"train-labels-idx1-ubyte\.gz.*expected 0{32}, got [0-9a-f]{32}.*not the official"
    with pytest.raises(ValueError, match=wrong):
        idx.load_idx_dataset("mnist", folder, expected_md5=bad)
    with pytest.raises(ValueError, match="md5 checksum mismatch"):
        idx.load_idx_dataset("mnist", folder)  # official table: generated files never match


def test_idx_wrong_magic(tmp_path):
    write_mnist(tmp_path)
    write_idx(tmp_path / idx.FILES["train_images"], np.zeros((6, 28, 28)), magic=2049)
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz: wrong magic number 2049, expected 2051"):
        idx.load_idx_dataset("mnist", tmp_path, verify=False, download=False)


def test_idx_truncated(tmp_path):
    write_mnist(tmp_path)
    path = tmp_path / idx.FILES["test_images"]
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-100]))
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte\.gz: truncated file.*\(4, 28, 28\)"):
        idx.load_idx_dataset("mnist", tmp_path, verify=False, download=False)
    path.write_bytes(gzip.compress(raw)[:-20])  # a cut-off gzip stream
    with pytest.raises(ValueError, match="truncated or not a gzip"):
        idx.read_idx(path)


def test_idx_count_mismatch(tmp_path):
    write_mnist(tmp_path)
    write_idx(tmp_path / idx.FILES["train_labels"], np.zeros(5))
    with pytest.raises(ValueError, match="6 images but .*train-labels-idx1-ubyte.gz holds 5 labels"):
        idx.load_idx_dataset("mnist", tmp_path, verify=False, download=False)


def test_idx_torchvision_layout_and_env_var(tmp_path, monkeypatch):
    write_mnist(tmp_path / "tv" / "MNIST" / "raw")
    assert idx.load_idx_dataset("mnist", tmp_path / "tv", verify=False, download=False).x_train.shape[0] == 6
    monkeypatch.setenv("NEUROSIM_DATA", str(tmp_path / "tv"))
    assert load_dataset("mnist", download=False, verify=False).x_test.shape[0] == 4


def test_idx_missing_files_message(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        load_dataset("mnist", data_dir=tmp_path / "nowhere")
    message = str(err.value)
    assert str(tmp_path / "nowhere" / "MNIST" / "raw") in message
    assert all(f in message for f in idx.FILES.values())
    assert "--data-dir DIR" in message and "downloading from" in message
    assert not (tmp_path / "nowhere").exists()  # a failed download leaves no empty folder
    with pytest.raises(FileNotFoundError, match="download=False"):
        load_dataset("mnist", download=False)


def test_idx_download_into_cache(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    write_mnist(mirror)
    monkeypatch.setitem(idx.MIRRORS, "mnist", mirror.as_uri() + "/")
    data = idx.load_idx_dataset("mnist", expected_md5=md5_table(mirror))
    cache = tmp_path / "home" / ".cache" / "neurosim" / "mnist"
    assert sorted(p.name for p in cache.iterdir()) == sorted(idx.FILES.values())  # no temp files left
    assert data.x_train.shape == (6, 1, 28, 28)
    with pytest.raises(ValueError, match="md5 checksum mismatch"):
        idx.load_idx_dataset("mnist", tmp_path / "other", download=True)
    assert list((tmp_path / "other" / "mnist").iterdir()) == []  # the rejected temp file is gone


@pytest.mark.skipif(not REAL_MNIST.is_dir(), reason="real MNIST not present")
def test_real_mnist():
    data = load_dataset("mnist", data_dir=REAL_MNIST, download=False)
    assert data.x_train.shape == (60000, 1, 28, 28) and data.x_test.shape == (10000, 1, 28, 28)
    assert data.y_train.min() == 0 and data.y_train.max() == 9
    assert 0.0 <= data.x_train.min() and data.x_train.max() == 1.0


# ---------------------------------------------------------------- CIFAR


def cifar_arrays(n_classes, n_per_file, n_files, seed=0):
    rng = np.random.default_rng(seed)
    return [
        (rng.integers(0, 256, (n_per_file, 3072), dtype=np.uint8),
         rng.integers(0, n_classes, n_per_file), rng.integers(0, 20, n_per_file))
        for _ in range(n_files)
    ]


def write_cifar(root, name, kind, batches):
    """Write ``batches`` [(pixels, fine, coarse)] (train files then test) in the published layout."""
    layout = next(lay for lay in LAYOUTS[name] if lay.kind == kind)
    folder = root / layout.folder
    folder.mkdir(parents=True)
    for fname, (pixels, fine, coarse) in zip(layout.train + layout.test, batches):
        if kind == "binary":
            labels = [fine[:, None]] if name == "cifar10" else [coarse[:, None], fine[:, None]]
            (folder / fname).write_bytes(np.hstack(labels + [pixels]).astype(np.uint8).tobytes())
        else:
            batch = {b"batch_label": b"batch", b"data": pixels,
                     b"filenames": [b"img_%d.png" % i for i in range(len(pixels))]}
            if name == "cifar10":
                batch[b"labels"] = fine.tolist()
            else:
                batch.update({b"fine_labels": fine.tolist(), b"coarse_labels": coarse.tolist()})
            # The published batches were pickled under numpy 1.x, which names numpy.core.multiarray.
            raw = pickle.dumps(batch, protocol=2).replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
            (folder / fname).write_bytes(raw)
    return layout


def make_tar(root, layout, dest):
    """Pack ``root/<layout.folder>`` into ``dest/<layout.archive>`` as the official archives are."""
    with tarfile.open(dest / layout.archive, "w:gz") as tar:
        tar.add(root / layout.folder, arcname=layout.folder)


@pytest.mark.parametrize("name, n_files", [("cifar10", 6), ("cifar100", 2)])
def test_cifar_layouts_agree(tmp_path, name, n_files):
    batches = cifar_arrays(10 if name == "cifar10" else 100, 3, n_files)
    loaded = []
    for kind in ("binary", "python"):
        layout = write_cifar(tmp_path / kind, name, kind, batches)
        loaded.append(load_dataset(name, data_dir=tmp_path / kind))  # parent folder
        loaded.append(load_cifar(name, tmp_path / kind / layout.folder))  # extracted folder itself
        (tmp_path / f"{kind}-tar").mkdir()
        make_tar(tmp_path / kind, layout, tmp_path / f"{kind}-tar")
        loaded.append(load_cifar(name, tmp_path / f"{kind}-tar"))
    first = loaded[0]
    assert first.x_train.shape == (3 * (n_files - 1), 3, 32, 32) and first.x_test.shape == (3, 3, 32, 32)
    assert first.x_train.dtype == np.float32 and first.y_train.dtype == np.int64
    pixels = np.concatenate([p for p, _, _ in batches[:-1]])
    np.testing.assert_array_equal(first.x_train.reshape(-1, 3072) * 255, pixels)
    np.testing.assert_array_equal(first.y_test, batches[-1][1])
    for other in loaded[1:]:
        for key in ("x_train", "y_train", "x_test", "y_test"):
            np.testing.assert_array_equal(getattr(first, key), getattr(other, key))
    if name == "cifar100":
        assert first.n_classes == 100
        coarse = load_cifar(name, tmp_path / "binary-tar", label="coarse")
        assert coarse.n_classes == 20
        np.testing.assert_array_equal(coarse.y_test, batches[-1][2])
        np.testing.assert_array_equal(load_cifar(name, tmp_path / "python", label="coarse").y_train, coarse.y_train)


class Exploit:
    """A pickle that, loaded unrestricted, creates the file ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_cifar_malicious_pickle_refused(tmp_path, capsys):
    from neurosim.cli import main

    layout = write_cifar(tmp_path, "cifar10", "python", cifar_arrays(10, 2, 6))
    marker = tmp_path / "pwned"
    (tmp_path / layout.folder / "data_batch_3").write_bytes(pickle.dumps({b"data": Exploit(marker)}, protocol=2))
    with pytest.raises(ValueError, match=r"data_batch_3: refused: it calls (posix|nt|os)\.system.*nothing in it ran"):
        load_cifar("cifar10", tmp_path)
    out = tmp_path / "run"
    assert main(["train", "--dataset", "cifar10", "--data-dir", str(tmp_path), "--epochs", "1",
                 "--quiet", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "data_batch_3: refused" in err and "Traceback" not in err
    assert not marker.exists() and not out.exists()


def test_cifar_wrong_record_length(tmp_path):
    layout = write_cifar(tmp_path, "cifar10", "binary", cifar_arrays(10, 2, 6))
    path = tmp_path / layout.folder / "test_batch.bin"
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(ValueError, match=r"test_batch\.bin: 6139 bytes is not a multiple of the 3073-byte record"):
        load_cifar("cifar10", tmp_path)


def test_cifar_missing_message(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        load_dataset("cifar100", data_dir=tmp_path)
    message = str(err.value)
    for text in ("cifar-100-python/", "cifar-100-binary.tar.gz", "train.bin", "kriz/cifar.html", "--data-dir"):
        assert text in message


# ---------------------------------------------------------------- ImageNet-style folders


@pytest.fixture
def image_root(tmp_path):
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for c, wnid in enumerate(["n03", "n01", "n02"]):
            folder = tmp_path / "imagenet" / split / wnid
            folder.mkdir(parents=True)
            for i, (ext, size) in enumerate([(".JPEG", (40, 30)), (".png", (20, 50))]):
                pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"img{i}{ext}")
            (folder / "notes.txt").write_text("not an image")
    return tmp_path / "imagenet"


def test_image_folder(image_root):
    train = ImageFolder(image_root, "train", image_size=16)
    assert train.classes == ["n01", "n02", "n03"] and train.class_to_index["n03"] == 2
    assert len(train) == 6 and [label for _, label in train.samples] == [0, 0, 1, 1, 2, 2]
    x, label = train[5]
    assert x.shape == (3, 16, 16) and x.dtype == np.float32 and label == 2
    assert 0.0 <= x.min() and x.max() <= 1.0
    xs, ys = train.load_sample(4, seed=1)
    assert xs.shape == (4, 3, 16, 16) and ys.dtype == np.int64
    xs2, ys2 = train.load_sample(4, seed=1)
    np.testing.assert_array_equal(xs, xs2)
    np.testing.assert_array_equal(ys, ys2)
    val = ImageFolder(image_root, "val", image_size=16)
    assert val.class_to_index == train.class_to_index and len(val) == 6


def test_image_folder_errors(image_root, tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset root not found"):
        ImageFolder(tmp_path / "missing")
    (image_root / "val" / "n99").mkdir()
    with pytest.raises(ValueError, match="n99 are not in .*subset of train classes"):
        ImageFolder(image_root, "val")
    empty = tmp_path / "empty"
    (empty / "train").mkdir(parents=True)
    with pytest.raises(ValueError, match="no class folders"):
        ImageFolder(empty)
    with pytest.raises(FileNotFoundError, match="split folder not found"):
        ImageFolder(tmp_path / "imagenet" / "train")


# ---------------------------------------------------------------- digits, synthetic, registry


def test_digits():
    data = load_dataset("digits", seed=3)
    assert data.x_train.shape == (1437, 1, 8, 8) and data.x_test.shape == (360, 1, 8, 8)
    assert data.x_train.dtype == np.float32 and data.x_train.min() == 0.0 and data.x_train.max() == 1.0
    assert set(np.unique(data.y_test)) == set(range(10)) and data.input_dim == 64
    np.testing.assert_array_equal(load_dataset("digits", seed=3).y_train, data.y_train)


def test_cosine_regression():
    data = load_dataset("cosine-regression", seed=1, n_train=50, n_test=20)
    assert data.x_train.shape == (50, 256) and data.y_test.shape == (20, 10)
    assert data.task == "regression" and data.n_classes == 0 and data.y_train.dtype == np.float32
    phi = -np.pi / 2 + np.arange(10) * np.pi / 9
    expected = np.cos(data.x_train.astype(np.float64).mean(axis=1, keepdims=True) + phi)
    np.testing.assert_allclose(data.y_train, expected, atol=1e-5)
    assert data.x_train.mean(axis=1).min() > -np.pi - 0.5 and data.x_train.mean(axis=1).max() < np.pi + 0.5
    np.testing.assert_array_equal(load_dataset("cosine-regression", seed=1, n_train=50, n_test=20).x_test, data.x_test)
    assert not np.array_equal(load_dataset("cosine-regression", seed=2, n_train=50, n_test=20).x_test, data.x_test)


def test_drtp_classification():
    data = load_dataset("drtp-classification", seed=0, n_train=400, n_test=100)
    assert data.x_train.shape == (400, 256) and data.x_test.shape == (100, 256)
    assert data.y_train.dtype == np.int64 and data.n_classes == 10 and set(np.unique(data.y_train)) == set(range(10))
    again = load_dataset("drtp-classification", seed=0, n_train=400, n_test=100)
    np.testing.assert_array_equal(again.x_train, data.x_train)


def test_teacher_student():
    from scipy.special import erf

    data = load_dataset("teacher-student", seed=4, n_train=100, n_test=30, dim=50, hidden=3)
    assert data.x_train.shape == (100, 50) and data.y_train.shape == (100, 1) and data.y_test.shape == (30, 1)
    rng = np.random.default_rng(4)
    w1, w2 = rng.standard_normal((3, 50)), rng.standard_normal((1, 3))
    expected = erf(data.x_test.astype(np.float64) @ w1.T / np.sqrt(50)) @ w2.T
    np.testing.assert_allclose(data.y_test, expected, atol=1e-5)
    default = load_dataset("teacher-student")
    assert default.x_train.shape == (10000, 500) and default.x_test.shape == (2000, 500)


def test_registry_and_dataset_checks():
    assert set(DATASETS) == {"digits", "mnist", "fashion-mnist", "cifar10", "cifar100",
                             "cosine-regression", "drtp-classification", "teacher-student"}
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'.*digits.*teacher-student"):
        load_dataset("imagenet")
    x = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match="x_test has shape"):
        Dataset("bad", x, np.zeros(3), np.zeros((2, 5), np.float32), np.zeros(2), 2, (4,), "classification")
    with pytest.raises(ValueError, match="task must be"):
        Dataset("bad", x, np.zeros(3), x, np.zeros(3), 2, (4,), "ranking")


def test_cifar_shaped_fashion_mnist_reads_as_cifar10(tmp_path, monkeypatch):
    """benchmarks/cifar_shaped_data.py writes Fashion-MNIST in the CIFAR-10 python layout."""
    spec = importlib.util.spec_from_file_location(
        "cifar_shaped_data", Path(__file__).parents[1] / "benchmarks" / "cifar_shaped_data.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    rng = np.random.default_rng(1)
    src = tmp_path / "fashion"
    src.mkdir()
    arrays = {"train_images": rng.integers(0, 256, (100, 28, 28)), "train_labels": np.arange(100) % 10,
              "test_images": rng.integers(0, 256, (30, 28, 28)), "test_labels": np.arange(30) % 10}
    for key, array in arrays.items():
        write_idx(src / idx.FILES[key], array)
    monkeypatch.setitem(idx.MD5, "fashion-mnist", md5_table(src))
    script.main(["--fashion-mnist", str(src), "--out", str(tmp_path / "out"), "--n-train", "50",
                 "--n-test", "20"])
    data = load_dataset("cifar10", data_dir=tmp_path / "out", download=False)
    assert data.x_train.shape == (50, 3, 32, 32) and data.x_test.shape == (20, 3, 32, 32)
    assert np.bincount(data.y_train).tolist() == [5] * 10  # class-balanced
    x = data.x_test
    assert (x[:, 0] == x[:, 1]).all() and (x[:, 0] == x[:, 2]).all()  # grey in every plane
    assert (x[:, :, :2] == 0).all() and (x[:, :, :, -2:] == 0).all()  # 2-pixel zero border
    originals = {arrays["test_images"][i].astype(np.uint8).tobytes() for i in range(30)}
    assert all(np.rint(img[0, 2:30, 2:30] * 255).astype(np.uint8).tobytes() in originals for img in x)
    with pytest.raises(SystemExit):
        script.main(["--fashion-mnist", str(src), "--out", str(tmp_path / "o2"), "--n-train", "55"])
