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


@pytest.fixture
def interrupted_train(monkeypatch):
    """``run(argv, epoch)``: ``neurosim`` with ``argv``, interrupted (as by Ctrl-C) inside
    training epoch ``epoch`` (from 1); returns the exit code, and later calls run normally."""
    import rate_models.loop as loop_module
    from neurosim.cli import main

    real_evaluate = loop_module.evaluate

    def run(argv: list[str], epoch: int) -> int:
        calls = {"n": 0}

        def crash(*a, **k):  # two evaluations per epoch: the next one falls inside `epoch`
            calls["n"] += 1
            if calls["n"] == 2 * epoch - 1:
                raise KeyboardInterrupt("simulated interruption")
            return real_evaluate(*a, **k)

        monkeypatch.setattr(loop_module, "evaluate", crash)
        try:
            return main(argv)
        finally:
            monkeypatch.setattr(loop_module, "evaluate", real_evaluate)

    return run
