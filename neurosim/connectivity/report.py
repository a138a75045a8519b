"""A network's statistics beside a cortical reference, statistic by statistic.

``within`` is True when the network's value lies inside the reference figure's 95 % interval,
False outside it, and None where either is missing (a figure without a published uncertainty is
shown, never flagged).
"""

from __future__ import annotations

from neurosim.connectivity.analysis import DEFINITIONS
from neurosim.connectivity.references import Reference
from neurosim.connectivity.triads import TRIAD_NAMES

_LOGNORMAL = {"lognormal_sigma": "all", "lognormal_sigma_bidirectional": "in_bidirectional_pairs",
              "lognormal_sigma_unidirectional": "in_unidirectional_pairs"}


def network_value(result: dict, key: str) -> float | None:
    """The network's figure for a reference ``key`` (lognormal sigmas: excitatory weights;
    ``triad_ratio_pair_null:C``: observed / pair-null expected count of class C)."""
    if key in _LOGNORMAL:
        fit = result["weights"].get("lognormal_excitatory", {}).get(_LOGNORMAL[key])
        return None if fit is None else fit["sigma"]
    if key.startswith("triad_ratio_pair_null:"):
        row = result["triad_census"][key.split(":", 1)[1]]
        return row["observed"] / row["expected_pair_null"] if row["expected_pair_null"] else None
    return result[key]


def comparison_rows(result: dict, reference: Reference) -> list[dict]:
    rows = []
    for f in reference.figures:
        value = network_value(result, f.key)
        within = (None if value is None or f.interval is None
                  else bool(f.interval[0] <= value <= f.interval[1]))
        rows.append({"statistic": f.key, "network": value, "reference": f.value,
                     "interval95": list(f.interval) if f.interval else None, "within": within,
                     "status": f.status, "citation": f.citation, "note": f.note})
    return rows


def _fmt(x) -> str:
    if x is None:
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    return f"{x:.4g}"


def format_report(result: dict, reference: Reference) -> str:
    """Markdown: summary, comparison with ``reference``, triad census, population pairs."""
    pairs = result["pairs"]
    lines = [f"# Connectivity of {result['source']}", ""]
    lines += [f"- {n}" for n in result["notes"]]
    split = result["weights"]["sign_split"]
    lines += [f"- {result['n_neurons']:,} neurons, {result['n_connections']:,} connections "
              f"({split['positive']:,} positive, {split['negative']:,} negative weights), "
              f"p = {_fmt(result['connection_probability'])}",
              f"- pairs: {pairs['unconnected']:,} unconnected, {pairs['unidirectional']:,} "
              f"unidirectional, {pairs['bidirectional']:,} bidirectional",
              f"- alignment angle W vs W^T: {_fmt(result['alignment_angle_deg'])}°", ""]
    if split["positive"] and split["negative"]:
        lines += ["Weights of both signs: pair and triad figures count every connection; weight "
                  "figures use |w| (each sign alone under `by_sign` in --json).", ""]
    lines += [f"## Beside {reference.name} ({reference.description})", "",
              "| statistic | network | reference | 95% interval | within | status | source |",
              "| --- | ---: | ---: | --- | --- | --- | --- |"]
    for r in comparison_rows(result, reference):
        iv = f"[{_fmt(r['interval95'][0])}, {_fmt(r['interval95'][1])}]" if r["interval95"] else "—"
        lines.append(f"| {r['statistic']} | {_fmt(r['network'])} | {_fmt(r['reference'])} | {iv} "
                     f"| {_fmt(r['within'])} | {r['status']} | {r['citation']} |")
    lines += ["", "Definitions:"]
    lines += [f"- {k}: {v}" for k, v in DEFINITIONS.items()]
    lines += [f"- {n}" for n in reference.notes]
    shuffled = result["shuffles"] > 0
    lines += ["", "## Triad census", "",
              "| class | observed | Erdős–Rényi | pair null | obs / pair null |"
              + (" z (rewired) |" if shuffled else ""),
              "| --- | ---: | ---: | ---: | ---: |" + (" ---: |" if shuffled else "")]
    for k in TRIAD_NAMES:
        c = result["triad_census"][k]
        ratio = c["observed"] / c["expected_pair_null"] if c["expected_pair_null"] else None
        z = f" {_fmt(c['shuffled']['z'])} |" if shuffled else ""
        lines.append(f"| {k} | {c['observed']:,} | {_fmt(c['expected_er'])} | "
                     f"{_fmt(c['expected_pair_null'])} | {_fmt(ratio)} |{z}")
    if result["populations"]:
        lines += ["", "## Population pairs", "",
                  "| a | b | a→b | b→a | bidirectional | bi share | ratio | r(log) | angle |",
                  "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for p in result["populations"]:
            lines.append(f"| {p['populations'][0]} | {p['populations'][1]} | {p['connections_ab']:,} "
                         f"| {p['connections_ba']:,} | {p['bidirectional']:,} "
                         f"| {_fmt(p['bidirectional_fraction_of_connected'])} "
                         f"| {_fmt(p['reciprocity_ratio'])} "
                         f"| {_fmt(p['reciprocal_weight_correlation_log'])} "
                         f"| {_fmt(p['alignment_angle_deg'])} |")
    return "\n".join(lines) + "\n"
