"""neurosim: biologically plausible learning rules in rate models, Brian2 circuits and
connectivity analyses.

The ``neurosim`` package is back-end neutral: rule specifications, seeded feedback matrices,
datasets (numpy), metrics, run records, plotting and the command line. It imports neither torch
nor brian2; ``rate_models`` (torch) and ``circuits`` (brian2) build on it.
"""

__version__ = "0.1.0"
