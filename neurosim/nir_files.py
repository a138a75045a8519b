"""Reading and writing Neuromorphic Intermediate Representation (NIR) files safely.

A ``.nir`` file is HDF5 (``nir.write`` / ``nir.read``): groups of numeric arrays and strings.
Nothing in it is unpickled or executed (h5py reads arrays and strings only).

Reading checks the file before ``nir.read`` builds the graph, so a bad file gets one message
naming what is wrong: a missing file, a file that is not HDF5 (or not a NIR graph), a node whose
type NIR does not define (named), and the type errors ``nir.read`` raises (a shape mismatch names
both nodes of the edge). Writing is atomic (a temporary file beside the target, then
``os.replace``) and refuses to replace an existing file unless asked.
"""

from __future__ import annotations

import os
from pathlib import Path

from neurosim.io import write_atomically

NIR_TYPES = ("Affine", "AvgPool2d", "Conv1d", "Conv2d", "CubaLI", "CubaLIF", "Delay", "Flatten", "I",
             "IF", "Input", "LI", "LIF", "Linear", "NIRGraph", "Output", "Scale", "SumPool2d",
             "Threshold")  # the node types of NIR 1.0 (nir.ir)


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _check_nodes(group, path: Path, where: str = "") -> None:
    """Every node of the HDF5 graph ``group`` has a type NIR defines; subgraphs recursively."""
    if "nodes" not in group or "edges" not in group:
        raise ValueError(f"{path}: not a NIR graph (no nodes or edges{where}); give a file written "
                         "by nir.write or 'neurosim export'")
    for name, node in group["nodes"].items():
        if "type" not in node:
            raise ValueError(f"{path}: node {where}{name!r} has no type; the file is damaged")
        kind = _text(node["type"][()])
        if kind not in NIR_TYPES:
            raise ValueError(f"{path}: node {where}{name!r} has type {kind!r}, which NIR does not "
                             f"define (NIR 1.0 types: {', '.join(NIR_TYPES)})")
        if kind == "NIRGraph":
            _check_nodes(node, path, f"{where}{name}.")


def read_graph(path: str | os.PathLike):
    """The ``nir.NIRGraph`` in ``path``; every failure raises ``ValueError`` (a missing file
    ``FileNotFoundError``) with one line naming the file, and the node where one is at fault."""
    import h5py
    import nir

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"NIR file {path} does not exist; give a .nir file written by "
                                "'neurosim export' or another NIR tool")
    if path.is_dir():
        raise ValueError(f"{path} is a folder; give a .nir file")
    try:
        with h5py.File(path, "r") as f:
            if "node" not in f or "type" not in f["node"] or _text(f["node"]["type"][()]) != "NIRGraph":
                raise ValueError(f"{path}: an HDF5 file that holds no NIR graph; give a file written "
                                 "by nir.write or 'neurosim export'")
            _check_nodes(f["node"], path)
    except OSError as err:
        detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"{path}: not a NIR file (it cannot be read as HDF5: {detail}); give a "
                         ".nir file written by nir.write or 'neurosim export'") from None
    try:
        return nir.read(path)
    except (ValueError, AssertionError, KeyError, TypeError, AttributeError, IndexError, OSError,
            RuntimeError) as err:
        detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"{path}: not a valid NIR graph ({detail})") from None


def write_graph(graph, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write ``graph`` to ``path`` with ``nir.write``, atomically; an existing ``path`` is replaced
    only with ``overwrite``. Return the path."""
    import nir

    path = Path(path)
    if path.is_dir():
        raise ValueError(f"--out {path} is a folder; give a file name such as {path / 'net.nir'}")
    if path.exists() and not overwrite:
        raise FileExistsError(f"--out {path} exists; give another path, or --overwrite to replace it")
    return write_atomically(path, lambda tmp: nir.write(tmp, graph))


def metadata_value(metadata: dict, key: str, default=None):
    """A graph's or node's metadata entry as a plain Python value (h5py returns strings as bytes
    and numbers as numpy scalars)."""
    if not metadata or key not in metadata:
        return default
    value = metadata[key]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value.item() if hasattr(value, "item") and getattr(value, "ndim", 1) == 0 else value
