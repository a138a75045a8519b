"""Fixtures shared by several test modules."""

import pytest


@pytest.fixture
def numpy_codegen():
    """Brian2's numpy code generation for the duration of a test: small circuits run without
    compiling Cython (~25 s on first use)."""
    from brian2 import prefs

    old = prefs.codegen.target
    prefs.codegen.target = "numpy"
    yield
    prefs.codegen.target = old
