"""The rules pages of the documentation are generated from the registry (docs/_ext/rule_pages.py).

The generator is called directly, without a Sphinx build: with the registry as it is, every rule
has its row on the index and its section on its family's page; with one more ``RuleSpec``, that
rule appears too, with its summary, source, backends and defaults.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from neurosim.rules import RULES, RuleSpec

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs" / "_ext"))
import rule_pages  # noqa: E402


def test_every_rule_of_the_registry_has_a_row_and_a_section():
    pages = rule_pages.rule_pages(RULES)
    assert set(pages) == {"index"} | {spec.family for spec in RULES.values()}
    for name, spec in RULES.items():
        assert f":ref:`{name} <rule-{name}>`" in pages["index"]
        assert f".. _rule-{name}:" in pages[spec.family]
        assert spec.source in pages[spec.family]
    for family in set(pages) - {"index"}:
        assert f".. automodule:: rate_models.rules.{family}" in pages[family]  # its equations


def test_a_rule_added_to_the_registry_appears_in_the_pages():
    extra = RuleSpec("dfa-test-only", "direct", "a rule added by tests/test_docs.py",
                     "Test et al. 2099, eq. 42", ("rate", "conv"), lr=0.003,
                     defaults_source="the test's own choice")
    pages = rule_pages.rule_pages({**RULES, extra.name: extra})
    assert ":ref:`dfa-test-only <rule-dfa-test-only>`" in pages["index"]
    assert "a rule added by tests/test_docs.py" in pages["index"]
    direct = pages["direct"]
    assert ".. _rule-dfa-test-only:" in direct
    for text in ("Test et al. 2099, eq. 42", extra.describe_defaults(),
                 "rate, convolutional architectures", "neurosim train --rule dfa-test-only"):
        assert text in direct, text
    assert direct.index("_rule-dfa-test-only") < direct.index(".. automodule::")  # before the equations
    assert "dfa-test-only" not in rule_pages.rule_pages(RULES)["direct"]


def test_each_backend_gets_its_command():
    circuit_only = RuleSpec("circuit-test-only", "pepita", "a circuit-only rule", "Test 2099", ("circuit",))
    page = rule_pages.rule_pages({**RULES, circuit_only.name: circuit_only})["pepita"]
    section = page[page.index(".. _rule-circuit-test-only:"):]
    assert "neurosim circuit --rule circuit-test-only --dataset digits" in section
    assert "neurosim train --rule circuit-test-only" not in page
    assert "neurosim train --rule dfa --neuron lif --dataset digits" in rule_pages.rule_pages(RULES)["direct"]


def test_a_changed_spec_changes_its_page():
    changed = {**RULES, "pfa": replace(RULES["pfa"], source="Li Ji-An & Benna, a changed source")}
    assert "a changed source" in rule_pages.rule_pages(changed)["pfa"]


def test_write_pages_rewrites_only_changed_pages_and_removes_stale_ones(tmp_path):
    rule_pages.write_pages(tmp_path, {"index": "a", "old": "b"})
    (tmp_path / "index.rst").touch()
    before = (tmp_path / "index.rst").stat().st_mtime_ns
    rule_pages.write_pages(tmp_path, {"index": "a", "new": "c"})
    assert (tmp_path / "index.rst").stat().st_mtime_ns == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.rst", "new.rst"]

