"""Sphinx configuration of the neurosim documentation.

Build: ``pip install -e ".[docs]" && sphinx-build -W -b html docs docs/_build/html``. Nothing is
fetched during the build (no intersphinx, no link check). Three parts of the site are generated
at build time so they cannot drift from the code: the rule pages (``_ext/rule_pages.py``, from
``neurosim.rules.RULES``), the API reference (autosummary, recursive, from the docstrings) and the
tutorials (``notebooks/*.ipynb`` copied into ``tutorials/`` and executed by myst-nb in their fast
setting, ``NEUROSIM_NOTEBOOK_FAST=1``, with jupyter-cache, so an unchanged notebook runs once).
"""

import os
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path[:0] = [str(ROOT), str(DOCS / "_ext")]  # this checkout's packages; the rule-page extension
# inherited by the kernels myst-nb starts: the fast setting, and this checkout's packages first
os.environ["NEUROSIM_NOTEBOOK_FAST"] = "1"
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
# the kernels draw with their inline backend (CI exports MPLBACKEND=Agg, under which a notebook's
# plt.show() would draw nothing); this process, which imports the plotting modules, uses Agg
os.environ.pop("MPLBACKEND", None)
__import__("matplotlib").use("Agg")


def copy_notebooks() -> None:
    """Copy ``notebooks/*.ipynb`` into ``tutorials/`` (ignored by git), rewriting only changed files."""
    target = DOCS / "tutorials"
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        copy = target / notebook.name
        if not copy.is_file() or copy.read_bytes() != notebook.read_bytes():
            shutil.copyfile(notebook, copy)
    for stale in set(target.glob("*.ipynb")) - {target / n.name for n in (ROOT / "notebooks").glob("*.ipynb")}:
        stale.unlink()


copy_notebooks()

project = "neurosim"
author = "the neurosim authors"
copyright = "the neurosim authors"
release = version = __import__("neurosim").__version__

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "rule_pages",
]
exclude_patterns = ["_build", "**.ipynb_checkpoints", "jupyter_execute"]
templates_path = ["_templates"]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}

# MyST: ``$...$`` maths as the notebooks write it; headings get anchors for links between pages
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3
# keep "--flag" and quotes as written (smart quotes would print "--neuron" as an en dash)
smartquotes = False

# notebooks: executed in their fast setting, cached between builds; a failing cell fails the build
nb_execution_mode = "cache"
nb_execution_cache_path = str(DOCS / "_build" / ".jupyter_cache")
nb_execution_timeout = 600
nb_execution_in_temp = True  # the notebooks' runs/ go to a temporary folder, not docs/tutorials/
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True  # one output block per cell for its printed lines

# API reference: one page per module (recursive autosummary, template in _templates/autosummary)
autosummary_generate = True
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_preserve_defaults = True
# an override without its own docstring (e.g. an autograd Function's forward) is left out rather
# than shown with torch's docstring
autodoc_inherit_docstrings = False

html_theme = "pydata_sphinx_theme"
html_title = "neurosim"
html_static_path = ["_static"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
