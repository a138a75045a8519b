"""Every notebook in notebooks/ runs top to bottom in its fast setting (NEUROSIM_NOTEBOOK_FAST=1).

Each notebook is executed with nbclient in a fresh temporary folder (so its ``runs/`` lands
there), with a ``python3`` kernelspec written for this interpreter, so the kernel imports the same
neurosim the tests do whatever kernels the machine has registered.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))

# per notebook: the run folders (relative to its working folder) it must leave behind, each
# trained in the fast setting, and text its outputs must contain
EXPECTED = {
    "compare_rules_digits.ipynb": {
        "runs": [f"runs/notebook-digits/{rule}" for rule in ("bp", "fa", "dfa", "drtp", "pepita", "pfa")],
        "fast": {"epochs": 2, "seeds": 1},
        "output_contains": ["Test accuracy (%)", "Seconds per epoch"],  # the markdown_table
    },
    "connectivity_vs_cortex.ipynb": {
        "runs": [f"runs/notebook-connectivity/{rule}"
                 for rule in ("bp", "kolen-pollack", "fa", "dfa", "drtp", "pfa")],
        "fast": {"epochs": 1, "seeds": 1},
        "output_contains": ["| Song 2005 |", "| reciprocity_ratio |"],
    },
    "spiking_digits.ipynb": {
        "runs": [f"runs/notebook-spiking/{rule}" for rule in ("drtp", "pepita", "bp")],
        "fast": {"epochs": 2, "seeds": 1},
        "output_contains": ["hidden spike rate", "spikes in one presentation", "Test accuracy (%)"],
    },
    "afa_theory.ipynb": {
        "runs": ["runs/notebook-afa/fig2", "runs/notebook-afa/pepita"],
        "fast": {"D": 60, "seeds": 2},
        "output_contains": ["Fig. 2b: D = 60", "size 3: D = 120", "deviation from theory"],
    },
    "pepita_circuit.ipynb": {
        "runs": ["runs/notebook-pepita-circuit"],
        "fast": {"mode": "rate", "train_samples": 150, "test_samples": 60},
        "output_contains": ["test accuracy", "update angle circuit vs rate rule", "spikes in 3 samples"],
    },
}


@pytest.fixture
def python3_kernel(tmp_path, monkeypatch):
    """A ``python3`` kernelspec that starts this interpreter; JUPYTER_PATH puts it first."""
    from jupyter_client.kernelspec import KernelSpecManager

    spec_dir = tmp_path / "jupyter" / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (neurosim tests)", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("NEUROSIM_NOTEBOOK_FAST", "1")
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend
    spec = KernelSpecManager().get_kernel_spec("python3")
    assert spec.argv[0] == sys.executable, spec.argv
    return "python3"


def test_notebooks_are_found():
    assert NOTEBOOKS, "no notebook in notebooks/"
    for path in NOTEBOOKS:
        assert path.name in EXPECTED, f"{path.name}: add what it must produce to EXPECTED"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path, tmp_path, python3_kernel):
    nb = nbformat.read(path, as_version=4)
    assert not any(cell.get("outputs") for cell in nb.cells if cell.cell_type == "code"), \
        f"{path.name} is stored with outputs; clear them before committing"
    workdir = tmp_path / "work"
    workdir.mkdir()
    client = nbclient.NotebookClient(nb, kernel_name=python3_kernel, timeout=300,
                                     resources={"metadata": {"path": str(workdir)}})
    client.execute()  # raises CellExecutionError naming the failing cell

    expected = EXPECTED[path.name]
    for run in expected["runs"]:
        summary = workdir / run / "summary.json"
        assert summary.is_file(), f"{path.name} did not write {run}/summary.json"
        data = json.loads(summary.read_text())
        assert {k: data[k] for k in expected["fast"]} == expected["fast"], f"{run} did not use the fast setting"
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    for text in expected["output_contains"]:
        assert text in outputs, f"{path.name}: {text!r} not in its outputs"
