"""Atomic file writers and a CSV reader.

Every writer saves to a temporary file in the destination folder and then
``os.replace``-s it over the target, so readers see either the old file or the
complete new one, never a partial write. On any failure the temporary file is
removed and the previous content is left untouched.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import IO, Any


TMP_SUFFIX = ".tmp"  # temporary files are ".<name>.<random>.tmp" beside their destination


def temporary_path(path: Path) -> str:
    """A new empty temporary file beside ``path`` (``.<name>.<random>.tmp``), for an atomic write."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    os.close(fd)
    return tmp


def publish(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """Give the finished temporary file ``tmp`` the mode a newly created file gets under the
    process's umask (``mkstemp`` makes it 0600) and move it over ``path`` atomically."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(tmp, 0o666 & ~mask)
    os.replace(tmp, path)


def write_atomically(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Write ``path`` through ``write(tmp)``, which fills a temporary file beside it; the file
    appears whole or not at all (the temporary file is removed if ``write`` fails)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    try:
        write(tmp)
        publish(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def remove_debris(folder: str | os.PathLike) -> list[Path]:
    """Delete temporary files left in ``folder`` by an atomic write that was killed before it could
    clean up (``.<name>.<random>.tmp``); return them."""
    found = sorted(Path(folder).glob(f".*{TMP_SUFFIX}")) if Path(folder).is_dir() else []
    for p in found:
        p.unlink(missing_ok=True)
    return found


def _atomic_write(path: str | os.PathLike, write: Callable[[IO[str]], None], newline: str | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    try:
        with open(tmp, "w", encoding="utf-8", newline=newline) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        publish(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; return the path."""
    if not isinstance(text, str):
        raise TypeError(f"text must be str, got {type(text).__name__}")
    return _atomic_write(path, lambda fh: fh.write(text))


def _to_builtin(obj: Any) -> Any:
    """JSON fallback: dataclasses -> dict, numpy scalars/arrays -> Python values."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def _find_non_finite(obj: Any, where: str = "") -> str | None:
    """Location (e.g. ``['per_seed'][1]['loss']``) of the first NaN/inf in ``obj``."""
    if isinstance(obj, float):
        return None if math.isfinite(obj) else (where or "<root>")
    if isinstance(obj, Mapping):
        items = ((f"{where}[{k!r}]", v) for k, v in obj.items())
    elif isinstance(obj, (list, tuple)):
        items = ((f"{where}[{i}]", v) for i, v in enumerate(obj))
    elif dataclasses.is_dataclass(obj) or hasattr(obj, "tolist"):
        return _find_non_finite(_to_builtin(obj), where)
    else:
        return None
    for sub_where, value in items:
        found = _find_non_finite(value, sub_where)
        if found:
            return found
    return None


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as JSON (indent 2, key order kept) atomically; return the path.

    NaN and infinities are refused (strict JSON): a ``ValueError`` names the
    offending entry. Dataclasses and numpy scalars/arrays are converted.
    """
    try:
        text = json.dumps(obj, indent=2, sort_keys=False, allow_nan=False, default=_to_builtin)
    except ValueError as exc:
        where = _find_non_finite(obj)
        if where is None:
            raise
        raise ValueError(f"cannot write {path}: non-finite value at {where} (JSON has no NaN/inf)") from exc
    return atomic_write_text(path, text + "\n")


def write_csv_rows(
    path: str | os.PathLike,
    rows: Iterable[Mapping[str, Any]],
    fieldnames: list[str] | None = None,
) -> Path:
    """Write dict rows as CSV with a header, atomically; return the path.

    ``fieldnames`` defaults to the union of the rows' keys in first-seen order;
    missing values are written as empty cells. With explicit ``fieldnames`` a
    row holding another key raises ``ValueError`` (and nothing is written).
    """
    rows = list(rows)
    if fieldnames is None:
        fieldnames = list(dict.fromkeys(key for row in rows for key in row))

    def write(fh: IO[str]) -> None:
        writer = csv.DictWriter(fh, fieldnames=fieldnames, restval="")
        writer.writeheader()
        writer.writerows(rows)

    return _atomic_write(path, write, newline="")


def read_csv_rows(path: str | os.PathLike) -> list[dict[str, str]]:
    """Read a CSV file with a header into a list of dicts (values are strings)."""
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


class DamagedFile(ValueError):
    """A file that cannot be read as what it should be: truncated, empty, foreign or unsafe."""


def load_torch_file(path: str | os.PathLike, map_location="cpu", what: str = "checkpoint",
                    fix: str = "start the run afresh in a new --out, or restore an earlier copy") -> Any:
    """Read a file written by ``torch.save`` without running code from it.

    ``torch.load(weights_only=True)`` unpickles only tensors, containers and plain values: a
    pickle that would call anything else (a shell command, any import) is refused before it
    runs. Every failure (missing, empty, truncated, random bytes, a refused payload) raises
    :class:`DamagedFile` naming ``path`` as a ``what`` and saying ``fix``.
    """
    import pickle
    import re
    import warnings

    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist; {fix}")
    try:
        with warnings.catch_warnings():  # torch warns about foreign pickle protocols: we refuse them
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        code = re.search(r"unsupported GLOBAL (\S+)", str(err))
        if code:
            raise DamagedFile(f"{what} {path} refers to {code.group(1)}, which is neither a tensor nor a "
                              "plain value: it was refused and nothing in it ran (a file that calls "
                              f"code may be malicious; use only files neurosim wrote). {fix[0].upper()}{fix[1:]}"
                              ) from None
        raise DamagedFile(f"{what} {path} is damaged or not a file neurosim wrote (its pickle data "
                          f"cannot be read safely); nothing in it ran. {fix[0].upper()}{fix[1:]}") from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, IndexError, TypeError,
            AttributeError, UnicodeDecodeError, MemoryError) as err:
        detail = str(err).strip().split(". ")[0].splitlines()[0] if str(err).strip() else type(err).__name__
        raise DamagedFile(f"{what} {path} is damaged or not a torch file ({detail}). "
                          f"{fix[0].upper()}{fix[1:]}") from None
