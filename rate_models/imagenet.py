"""Streamed training for data sets that do not fit on the device (ImageNet, or ``--stream``).

Transforms (Pillow + torch, the standard ImageNet recipe):

* training: random-resized crop — a box of area ``U(0.08, 1)`` times the image's and aspect
  ratio ``exp(U(log 3/4, log 4/3))``, placed uniformly; after 10 boxes that do not fit, the
  centre crop with the ratio clamped to [3/4, 4/3] — resized bilinearly to ``S × S``
  (``cfg.image_size``, 224 by default), a horizontal flip with probability 1/2;
* evaluation: shorter side resized to ``round(S · 256/224)`` (256 for S = 224), centre ``S × S``;

then float pixels in [0, 1] normalized per channel with the ImageNet mean and std. The random
draws of sample ``i`` in epoch ``e`` of seed ``s`` come from ``numpy.random.default_rng([s, e, i])``,
so a batch does not depend on which worker process decoded it, and a run (and its resume) is
reproducible. The sampler hands ``(seed, epoch, index)`` keys to the data set, which lets
persistent worker processes know the epoch.

Training (:func:`train_streaming`, called by ``rate_models.train.train_run``): each epoch iterates
a ``DataLoader`` (``cfg.workers`` decoding processes, pinned memory on CUDA), moves each batch to
the device and calls the rule's ``train_step``, as the resident loop does; the rule applies bf16
autocast when ``cfg.amp`` says so, and evaluation runs under the same autocast. The run folder is
the resident path's: ``config.json``, ``metrics.csv``, ``summary.json``, plots and atomically
rewritten ``checkpoints/seed<k>.pt`` (rule with its network, optimizer, scheduler, RNG states,
rows, epoch) every epoch; ``resume`` continues from them.

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
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler
from tqdm.auto import tqdm

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
    """ImageNet class folders under ``cfg.data_dir`` (train and val splits), or with ``cfg.stream``
    a loadable data set's arrays."""
    if cfg.dataset == "imagenet":
        if cfg.data_dir is None:
            raise ValueError("--dataset imagenet needs --data-dir <root> holding train/<class>/ and val/<class>/")
        train, val = ImageFolder(cfg.data_dir, "train"), ImageFolder(cfg.data_dir, "val")
        s = cfg.image_size
        return StreamedData(ImageNetDataset(train, s, True), ImageNetDataset(train, s, False),
                            ImageNetDataset(val, s, False), len(train.classes), 3 * s * s, len(train.classes))
    data = load_dataset(cfg.dataset, data_dir=cfg.data_dir)
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


@torch.no_grad()
def evaluate_loader(rule, loader: DataLoader, n_classes: int, device, procs: Processes) -> tuple[float, float | None]:
    """Mean loss and accuracy (percent; None for regression) of ``rule.net`` over the loader's
    samples of every process, without dropout, under the rule's autocast."""
    net = rule.net
    net.eval()
    totals = torch.zeros(3, dtype=torch.float64, device=device)  # loss sum, correct, samples
    for x, y in loader:
        b = _batch(x, y, n_classes, device)
        with rule.autocast(device):
            a = net(b.x).float()
        totals[0] += float(net.loss_from_logits(a, b.target)) * len(b.x)
        if b.labels is not None:
            totals[1] += (a.argmax(1) == b.labels).sum()
        totals[2] += len(b.x)
    net.train()
    loss_sum, correct, n = procs.sum(totals).tolist()
    return loss_sum / n, (100.0 * correct / n if n_classes else None)


def _spaced(n: int, k: int) -> list[int]:
    """``min(k, n)`` distinct, evenly spaced indices of ``range(n)``."""
    return np.linspace(0, n - 1, min(k, n)).round().astype(int).tolist()


def _probe(data: StreamedData, n: int, device) -> TensorSplit:
    """``n`` evenly spaced training samples under the evaluation transform (figures)."""
    items = [data.train_eval[i] for i in _spaced(len(data.train_eval), n)]
    x = torch.stack([torch.as_tensor(x) for x, _ in items])
    y = torch.stack([torch.as_tensor(y) for _, y in items])
    return _batch(x, y, data.n_classes, device)


def train_streamed_seed(cfg: RunConfig, seed: int, data: StreamedData, out: Path, resume: bool, bar,
                        procs: Processes, device, on_epoch=lambda rows: None) -> tuple[list[dict], torch.nn.Module]:
    """Train seed ``seed`` on streamed batches; return its per-epoch rows and trained network.

    ``on_epoch(rows)`` is called on the writing process after every epoch's checkpoint."""
    from rate_models.train import (_atomic_torch_save, _check_finite, epoch_figures, frozen_parameters,
                                   restore_checkpoint, seed_rules)

    rule, opt, sched, _ = seed_rules(cfg, [seed], [data.input_dim, *cfg.hidden, data.n_out], device)
    net = rule.net
    frozen = frozen_parameters(rule, opt) if cfg.freeze_hidden else []
    procs.attach(opt)
    share = cfg.batch_size // procs.world
    train_loader = make_loader(data.train, share, seed, cfg.workers, device, procs=procs)
    train_eval_loader = make_loader(data.train_eval, share, seed, cfg.workers, device,
                                    _spaced(len(data.train_eval), len(data.test)), procs)
    test_loader = make_loader(data.test, share, seed, cfg.workers, device, list(range(len(data.test))), procs)
    ckpt = out / "checkpoints" / f"seed{seed}.pt"
    n_train = len(train_loader.sampler) * procs.world  # samples trained per epoch (padded under torchrun)
    rows, start = [], 0
    if bar.total is None:  # the bar counts samples: all seeds' epochs of this run
        bar.total = cfg.epochs * cfg.seeds * n_train
        bar.refresh()
    if resume and ckpt.exists():
        rows, start = restore_checkpoint(ckpt, rule, opt, sched, device)
        bar.update(start * n_train)
    elif cfg.pre_mirror_epochs and not cfg.freeze_hidden:
        rule.pre_train(cfg.pre_mirror_epochs * len(train_loader), cfg.batch_size)

    probe = _probe(data, cfg.probe_batch, device)
    for epoch in range(start, cfg.epochs):
        decay = cfg.weight_decay
        if epoch > 0 and cfg.weight_decay_after_first_epoch is not None:
            decay = cfg.weight_decay_after_first_epoch
        opt.param_groups[0]["weight_decay"] = decay
        train_loader.sampler.set_epoch(epoch)
        net.train()
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        loss_sum = torch.zeros((), device=device)
        for x, y in train_loader:
            b = _batch(x, y, data.n_classes, device)
            procs.share(len(b.x), net.noise)
            loss_sum += rule.train_step(b.x, b.target, opt).detach().float() * len(b.x)
            for p in frozen:
                p.grad = None
            bar.update(len(b.x) * procs.world)
        step_loss = float(procs.sum(loss_sum)) / n_train
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        lr = opt.param_groups[0]["lr"]
        sched.step()
        train_loss, train_acc = evaluate_loader(rule, train_eval_loader, data.n_classes, device, procs)
        _check_finite(train_loss, net, epoch, cfg, ckpt, rows[-1] if rows else None, step_loss)
        test_loss, test_acc = evaluate_loader(rule, test_loader, data.n_classes, device, procs)
        row = {"seed": seed, "epoch": epoch + 1, "train_loss": train_loss, "train_accuracy": train_acc,
               "test_loss": test_loss, "test_accuracy": test_acc, "train_step_loss": step_loss, "lr": lr,
               "seconds": seconds, "samples_per_second": n_train / seconds}
        row.update(epoch_figures(rule, net, probe, cfg.rule))
        rows.append(row)
        if procs.writer:
            ckpt.parent.mkdir(parents=True, exist_ok=True)
            _atomic_torch_save({"rule": rule.state_dict(), "optimizer": opt.state_dict(),
                                "scheduler": sched.state_dict(), "torch_rng": torch.get_rng_state(),
                                "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                                "noise_rng": net.noise.get_state(),
                                "rows": rows, "epoch": epoch + 1}, ckpt)
            on_epoch(rows)
        shown = f"{test_acc:.2f}%" if test_acc is not None else f"{test_loss:.4g}"
        bar.set_postfix(seed=seed, epoch=f"{epoch + 1}/{cfg.epochs}", test=shown)
    return rows, net


def train_streaming(cfg: RunConfig, out: Path, resume: bool, progress: bool, procs: Processes, device) -> tuple:
    """Train ``cfg.seeds`` seeds one after another on streamed batches into the run folder ``out``
    (``rate_models.train.train_run`` calls this for :data:`~neurosim.config.STREAMED_DATASETS` and
    ``cfg.stream``, checks the configuration first and writes the summary and plots); return the
    per-epoch rows, each seed's final weights and the data set's description."""
    from rate_models.train import np_weights, preflight, record_config

    procs.check(cfg.batch_size, 0)  # every process loads an equal share: only divisibility matters
    data = streamed_data(cfg)
    preflight(cfg, [data.input_dim, *cfg.hidden, data.n_out])
    record = record_config(cfg, out, resume, procs)
    all_rows, nets = [], []
    with tqdm(total=None, unit="sample", unit_scale=True, disable=not (progress and procs.writer),
              desc=f"{cfg.rule} on {cfg.dataset} (streamed{', hidden frozen' if cfg.freeze_hidden else ''})") as bar:
        for seed in range(cfg.seed, cfg.seed + cfg.seeds):
            rows, net = train_streamed_seed(
                cfg, seed, data, out, resume, bar, procs, device,
                on_epoch=lambda rows: record(all_rows + rows))
            all_rows.extend(rows)
            nets.append(net)
    return all_rows, [np_weights(n) for n in nets], data.source or data
