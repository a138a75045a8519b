"""ImageNet-style class folders (``root/<split>/<wnid>/*.JPEG``) decoded lazily with Pillow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

EXTENSIONS = (".jpeg", ".jpg", ".png")
SPLITS = ("train", "val")


def _class_dirs(split_dir: Path) -> list[Path]:
    if not split_dir.is_dir():
        raise FileNotFoundError(f"{split_dir}: split folder not found; expected {split_dir}/<class>/<image files>")
    dirs = sorted(d for d in split_dir.iterdir() if d.is_dir())
    if not dirs:
        raise ValueError(
            f"{split_dir}: no class folders; images must sit in one subfolder per class "
            "(for ImageNet val, sort the flat folder into <wnid>/ subfolders first)"
        )
    return dirs


class ImageFolder:
    """Images under ``root/<split>/<class>/`` with labels from the sorted train class names.

    ``classes``: sorted train class folder names; ``class_to_index``: name -> label;
    ``samples``: (path, label) pairs, listed without decoding. Item ``i`` is a float32
    array (3, image_size, image_size) in [0, 1] (RGB; shorter side resized to
    ``image_size``, then center-cropped) and its int label.
    """

    def __init__(self, root, split: str = "train", image_size: int = 224):
        self.root = Path(root)
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.root}: dataset root not found; expected {self.root}/train/<class>/...")
        self.split = split
        self.image_size = image_size
        self.classes = [d.name for d in _class_dirs(self.root / "train")]
        self.class_to_index = {c: i for i, c in enumerate(self.classes)}
        split_dirs = _class_dirs(self.root / split)
        unknown = sorted(d.name for d in split_dirs if d.name not in self.class_to_index)
        if unknown:
            raise ValueError(
                f"{self.root / split}: class folders {', '.join(unknown[:10])} are not in "
                f"{self.root / 'train'}; val classes must be a subset of train classes"
            )
        self.samples = [
            (path, self.class_to_index[d.name])
            for d in split_dirs
            for path in sorted(d.iterdir())
            if path.suffix.lower() in EXTENSIONS and path.is_file()
        ]
        if not self.samples:
            raise ValueError(f"{self.root / split}: no image files ({', '.join(EXTENSIONS)}) in the class folders")

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        path, label = self.samples[i]
        with Image.open(path) as img:
            img = img.convert("RGB")
            scale = self.image_size / min(img.size)
            width, height = (max(self.image_size, round(s * scale)) for s in img.size)
            img = img.resize((width, height), Image.BILINEAR)
            left, top = (width - self.image_size) // 2, (height - self.image_size) // 2
            img = img.crop((left, top, left + self.image_size, top + self.image_size))
            pixels = np.asarray(img, dtype=np.float32) / np.float32(255)
        return pixels.transpose(2, 0, 1), label

    def load_sample(self, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Decode ``n`` distinct samples drawn with ``seed``: float32 (n, 3, S, S) images and int64 (n,) labels."""
        if not 0 < n <= len(self):
            raise ValueError(f"n must be in 1..{len(self)} (the number of {self.split} images), got {n}")
        chosen = np.random.default_rng(seed).choice(len(self), size=n, replace=False)
        items = [self[int(i)] for i in chosen]
        return np.stack([x for x, _ in items]), np.array([y for _, y in items], dtype=np.int64)
