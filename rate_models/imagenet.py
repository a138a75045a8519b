"""Streamed data: data sets that do not fit on the device (ImageNet, or ``--stream``), decoded
batch by batch from a ``DataLoader``, and their batch source for the training loop
(``rate_models.loop``).

Transforms (Pillow + torch, the standard ImageNet recipe):

* training: random-resized crop — a box of area ``U(0.08, 1)`` times the image's and aspect
  ratio ``exp(U(log 3/4, log 4/3))``, placed uniformly; after 10 boxes that do not fit, the
  centre crop with the ratio clamped to [3/4, 4/3] — resized bilinearly to ``S × S``
  (``cfg.streaming.image_size``, 224 by default), a horizontal flip with probability 1/2;
* evaluation: shorter side resized to ``round(S · 256/224)`` (256 for S = 224), centre ``S × S``;

then float pixels in [0, 1] normalized per channel with the ImageNet mean and std. The random
draws of sample ``i`` in epoch ``e`` of seed ``s`` come from ``numpy.random.default_rng([s, e, i])``,
so a batch does not depend on which worker process decoded it, and a run (and its resume) is
reproducible. The sampler hands ``(seed, epoch, index)`` keys to the data set, which lets
persistent worker processes know the epoch; its state (seed and epoch) is saved in the
checkpoint as the shuffle state.

Training is the resident runs' loop (``rate_models.loop``) fed by :class:`StreamedBatches`: each
epoch iterates a ``DataLoader`` (``cfg.streaming.workers`` decoding processes, pinned memory on CUDA) and
moves each batch to the device. The run folder, checkpoints and resume are the resident runs'.

Under torchrun every process loads its own ``batch_size / world`` rows of each global batch
through a ``DistributedSampler`` (every epoch ``set_epoch``; it pads the epoch so all processes
get equal shares), and the updates are all-reduced with weights ``1/world`` by
``rate_models.distributed.Processes`` exactly as in the resident path. Evaluation splits the
samples over the processes without padding and sums the counts.

Metrics per epoch: ``test_*`` over the whole evaluation split; ``train_*`` over a fixed, evenly
spaced subset of the training split (as many samples as the evaluation split, evaluation
transform, no dropout), measured as ``test_*`` is; ``train_step_loss`` is the mean training loss
of the epoch's steps (training transforms, dropout).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from neurosim.config import RunConfig
from neurosim.datasets import ImageFolder, load_dataset
from rate_models.data import TensorSplit
from rate_models.distributed import Processes

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CROP_SCALE = (0.08, 1.0)
CROP_RATIO = (3 / 4, 4 / 3)
CROP_ATTEMPTS = 10


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator of sample ``index``'s random transform in ``epoch`` of a run seeded ``seed``."""
    return np.random.default_rng([seed, epoch, index])


def random_resized_box(width: int, height: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """``(left, top, w, h)`` of a random-resized crop of a ``width × height`` image (module doc)."""
    area = width * height
    log_ratio = (math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1]))
    for _ in range(CROP_ATTEMPTS):
        target = area * rng.uniform(*CROP_SCALE)
        ratio = math.exp(rng.uniform(*log_ratio))
        w, h = round(math.sqrt(target * ratio)), round(math.sqrt(target / ratio))
        if 0 < w <= width and 0 < h <= height:
            return int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1)), w, h
    ratio = min(max(width / height, CROP_RATIO[0]), CROP_RATIO[1])
    w, h = (width, min(height, round(width / ratio))) if width / height <= ratio else \
        (min(width, round(height * ratio)), height)
    return (width - w) // 2, (height - h) // 2, w, h


def normalized_tensor(img: Image.Image) -> torch.Tensor:
    """float32 ``(3, H, W)`` of an RGB image: pixels / 255, minus the ImageNet mean, over its std."""
    x = torch.from_numpy(np.asarray(img, dtype=np.float32) / np.float32(255)).permute(2, 0, 1)
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return ((x - mean) / std).contiguous()


def train_transform(img: Image.Image, size: int, rng: np.random.Generator) -> torch.Tensor:
    """Random-resized crop to ``size × size`` (bilinear), random horizontal flip, normalization."""
    img = img.convert("RGB")
    left, top, w, h = random_resized_box(img.width, img.height, rng)
    img = img.resize((size, size), Image.BILINEAR, box=(left, top, left + w, top + h))
    if rng.random() < 0.5:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    return normalized_tensor(img)


def eval_transform(img: Image.Image, size: int) -> torch.Tensor:
    """Shorter side resized to ``round(size · 256/224)`` (bilinear), centre crop ``size × size``,
    normalization."""
    img = img.convert("RGB")
    short = round(size * 256 / 224)
    scale = short / min(img.size)
    width, height = (max(short, round(s * scale)) for s in img.size)
    img = img.resize((width, height), Image.BILINEAR)
    left, top = (width - size) // 2, (height - size) // 2
    return normalized_tensor(img.crop((left, top, left + size, top + size)))


def _split_key(key) -> tuple[int, int, int]:
    """``(seed, epoch, index)`` from a sampler's key or a plain index (seed 0, epoch 0)."""
    return tuple(int(k) for k in key) if isinstance(key, tuple) else (0, 0, int(key))


class ImageNetDataset(Dataset):
    """Decoded, transformed samples of an :class:`~neurosim.datasets.ImageFolder`.

    Item ``(seed, epoch, i)`` (or ``i``: seed 0, epoch 0) is a normalized float32
    ``(3, size, size)`` tensor and its int label; ``augment``: training transform drawn from
    ``sample_rng(seed, epoch, i)``, otherwise the deterministic evaluation transform.
    """

    def __init__(self, folder: ImageFolder, size: int, augment: bool):
        self.folder, self.size, self.augment = folder, size, augment
        self.n_classes = len(folder.classes)

    def __len__(self) -> int:
        return len(self.folder)

    def __getitem__(self, key) -> tuple[torch.Tensor, int]:
        seed, epoch, i = _split_key(key)
        path, label = self.folder.samples[i]
        try:
            with Image.open(path) as img:
                x = (train_transform(img, self.size, sample_rng(seed, epoch, i)) if self.augment
                     else eval_transform(img, self.size))
        except OSError as err:
            raise OSError(f"{path}: cannot decode the image ({err})") from err
        return x, label


class ArrayDataset(Dataset):
    """Samples of an in-memory numpy split, streamed unchanged (``--stream`` on a loadable data
    set): item ``(seed, epoch, i)`` or ``i`` is ``x[i]`` as a float32 tensor and ``y[i]``."""

    def __init__(self, x: np.ndarray, y: np.ndarray, n_classes: int):
        self.x, self.y, self.n_classes = x, y, n_classes

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, key):
        i = _split_key(key)[2]
        return torch.from_numpy(np.ascontiguousarray(self.x[i], dtype=np.float32)), self.y[i]


class EpochSampler(Sampler):
    """``(seed, epoch, index)`` keys of this process's share of an epoch: a ``DistributedSampler``
    over all ``n`` samples (``world`` replicas, shuffled with ``seed``; one replica outside
    torchrun), or with ``indices`` (evaluation) every ``world``-th of them from ``rank``, in
    order and without padding."""

    def __init__(self, n: int, seed: int, indices: list[int] | None = None, world: int = 1, rank: int = 0):
        self.seed, self.epoch = seed, 0
        self.order = DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=True, seed=seed) \
            if indices is None else indices[rank::world]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if isinstance(self.order, DistributedSampler):
            self.order.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.order)

    def __iter__(self):
        return ((self.seed, self.epoch, int(i)) for i in self.order)

    def state_dict(self) -> dict:
        """The shuffle's state: its seed and the epoch last set."""
        return {"seed": self.seed, "epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        self.seed = int(state["seed"])
        if isinstance(self.order, DistributedSampler):
            self.order.seed = self.seed
        self.set_epoch(int(state["epoch"]))


def make_loader(dataset: Dataset, batch_size: int, seed: int, workers: int, device,
                indices: list[int] | None = None, procs: Processes | None = None) -> DataLoader:
    """A ``DataLoader`` of this process's batches of ``batch_size``: shuffled epochs of the whole
    data set (call ``loader.sampler.set_epoch`` every epoch), or the ``indices`` in order
    (``EpochSampler``); decoded by ``workers`` persistent processes (0: in this process), with
    pinned memory when ``device`` is CUDA."""
    procs = procs or Processes()
    sampler = EpochSampler(len(dataset), seed, indices, procs.world, procs.rank)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
                      pin_memory=torch.device(device).type == "cuda", persistent_workers=workers > 0)


@dataclass(frozen=True)
class StreamedData:
    """The splits of a streamed run; ``n_classes`` and ``input_dim`` as ``run_summary`` reads them."""

    train: Dataset  # training transform
    train_eval: Dataset  # the training split under the evaluation transform
    test: Dataset
    n_classes: int
    input_dim: int
    n_out: int
    source: object = None  # the loaded neurosim Dataset of a --stream run (None for ImageNet)


def streamed_data(cfg: RunConfig) -> StreamedData:
    """ImageNet class folders under ``cfg.data.data_dir`` (train and val splits), or with ``cfg.streaming.stream``
    a loadable data set's arrays."""
    if cfg.data.dataset == "imagenet":
        if cfg.data.data_dir is None:
            raise ValueError("--dataset imagenet needs --data-dir <root> holding train/<class>/ and val/<class>/")
        train, val = ImageFolder(cfg.data.data_dir, "train"), ImageFolder(cfg.data.data_dir, "val")
        s = cfg.streaming.image_size
        return StreamedData(ImageNetDataset(train, s, True), ImageNetDataset(train, s, False),
                            ImageNetDataset(val, s, False), len(train.classes), 3 * s * s, len(train.classes))
    data = load_dataset(cfg.data.dataset, data_dir=cfg.data.data_dir)
    y_train = data.y_train if data.n_classes else data.y_train.astype(np.float32).reshape(len(data.y_train), -1)
    y_test = data.y_test if data.n_classes else data.y_test.astype(np.float32).reshape(len(data.y_test), -1)
    train = ArrayDataset(data.x_train, y_train, data.n_classes)
    return StreamedData(train, train, ArrayDataset(data.x_test, y_test, data.n_classes), data.n_classes,
                        data.input_dim, data.n_classes or y_train.shape[1], data)


def _batch(x: torch.Tensor, y: torch.Tensor, n_classes: int, device) -> TensorSplit:
    """A loaded batch on ``device``: flat inputs, one-hot targets and labels (or regression targets)."""
    x = x.to(device, non_blocking=True).reshape(len(x), -1)
    y = y.to(device, non_blocking=True)
    if n_classes:
        return TensorSplit(x, torch.nn.functional.one_hot(y, n_classes).to(torch.float32), y)
    return TensorSplit(x, y.to(torch.float32), None)


def _spaced(n: int, k: int) -> list[int]:
    """``min(k, n)`` distinct, evenly spaced indices of ``range(n)``."""
    return np.linspace(0, n - 1, min(k, n)).round().astype(int).tolist()


def _probe(data: StreamedData, n: int, device) -> TensorSplit:
    """``n`` evenly spaced training samples under the evaluation transform (figures)."""
    items = [data.train_eval[i] for i in _spaced(len(data.train_eval), n)]
    x = torch.stack([torch.as_tensor(x) for x, _ in items])
    y = torch.stack([torch.as_tensor(y) for _, y in items])
    return _batch(x, y, data.n_classes, device)


class StreamedBatches:
    """The batch source of one seed on streamed data (``rate_models.loop``; streamed runs train
    their seeds one after another).

    Every epoch iterates a ``DataLoader`` of this process's share of each global batch (the
    sampler shuffles with the seed and the epoch); evaluation iterates the evaluation splits'
    loaders, split over the processes and summed; the probe batch of the figures is
    ``cfg.training.probe_batch`` evenly spaced training samples under the evaluation transform.
    """

    def __init__(self, data: StreamedData, seed: int, cfg: RunConfig, device, procs: Processes):
        self.data, self.device, self.procs = data, device, procs
        share = cfg.training.batch_size // procs.world
        self.train = make_loader(data.train, share, seed, cfg.streaming.workers, device, procs=procs)
        self.loaders = {
            "train": make_loader(data.train_eval, share, seed, cfg.streaming.workers, device,
                                 _spaced(len(data.train_eval), len(data.test)), procs),
            "test": make_loader(data.test, share, seed, cfg.streaming.workers, device, list(range(len(data.test))), procs)}
        self.evaluation_processes = procs
        self.n_train = len(self.train.sampler) * procs.world  # samples of an epoch (padded under torchrun)
        self.batches_per_epoch = len(self.train)
        self.input_dim, self.n_out = data.input_dim, data.n_out
        self.probe = _probe(data, cfg.training.probe_batch, device)

    def epoch(self, epoch: int, noise):
        """``(x, target)`` of this process's share of every global batch of epoch ``epoch``."""
        self.train.sampler.set_epoch(epoch)
        for x, y in self.train:
            b = _batch(x, y, self.data.n_classes, self.device)
            self.procs.share(len(b.x), noise)
            yield b.x, b.target

    def evaluation(self, split: str):
        """This process's batches of the split ``"train"`` (the evenly spaced subset under the
        evaluation transform) or ``"test"``."""
        return (_batch(x, y, self.data.n_classes, self.device) for x, y in self.loaders[split])

    def shuffle_state(self) -> dict:
        return self.train.sampler.state_dict()

    def load_shuffle_state(self, state: dict) -> None:
        self.train.sampler.load_state_dict(state)
