"""The text views of `shipway rules backtest` and `shipway rules compare`: what changes, with
examples showing the fields the rules read first, and both sides' scores on the outcomes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from shipway.experiments.backtest import NO_RULES, BacktestReport

__all__ = ["outcome_lines", "render", "render_comparison", "shown"]


def render(report: BacktestReport) -> str:
    lines = [
        f"backtest of {report.proposed_version} against {report.current_version}",
        f"{report.total} logged predictions replayed; {report.changed} decisions change "
        f"({report.changed / report.total:.1%})"
        if report.total
        else "no logged predictions in the window",
    ]
    if report.skipped:
        lines.append(f"{report.skipped} rows skipped (logged in service mode off or shadow, or unreadable)")
    if report.transitions:
        lines.append("queue changes:")
        lines += [f"  {a} -> {b}: {n}" for a, b, n in report.transitions]
    for kind, counts in (("review", report.review), ("fallback", report.fallback)):
        if counts:
            lines.append(f"{kind}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    if report.overrides:
        lines.append(f"output overrides change on {report.overrides}")
    for change, kept in report.examples.items():
        lines.append(f"examples, {change}:")
        for ex in kept:
            lines.append(
                f"  {ex['request_id']}: {shown(ex['input'], report.reads, 'input')} -> "
                f"{shown(ex['output'], report.reads, 'output')}; fired now {ex['current']['fired']}, "
                f"proposed {ex['proposed']['fired']}"
            )
    lines += outcome_lines(report.to_dict()["outcomes"], ("now", "proposed"), report.changed)
    return "\n".join(lines)


def shown(document: Any, reads: Sequence[str], root: str, limit: int = 160) -> str:
    """A logged input or output on one line, the fields the rules read first, cut at `limit`."""
    if isinstance(document, dict):
        first = [key.partition(".")[2] for key in reads if key.startswith(root + ".")]
        first = [key for key in first if key in document]
        document = {**{key: document[key] for key in first}, **document}
    text = orjson.dumps(document).decode()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def outcome_lines(outcomes: dict[str, Any] | None, sides: tuple[str, str], changed: int) -> list[str]:
    """Both sides' scores on the outcomes that came back (rules/scores.py), as a small table."""
    if outcomes is None:
        return ["outcomes: no store to read feedback from, so the decisions are not scored"]
    keys = ("current", "proposed") if "current" in outcomes else ("live", "shadow")
    a, b = outcomes[keys[0]], outcomes[keys[1]]
    if not a["labelled"] and not a["queue"]["labelled"]:
        return [
            "outcomes: no feedback came back for these predictions, so the decisions are not scored "
            "(send true labels or the right queue: docs/feedback.md)"
        ]
    scored = f", {outcomes['changed_scored']} of the {changed} changed ones" if "changed_scored" in outcomes else ""
    lines = [f"outcomes: {a['labelled']} predictions with their true label{scored}"]
    rows = [
        ("accuracy of the answers", _pct(a["accuracy"]), _pct(b["accuracy"])),
        ("wrong answers sent for review", a["caught"], b["caught"]),
        ("wrong answers returned unreviewed", a["through"], b["through"]),
        ("answered with the default", a["fell_back"], b["fell_back"]),
        ("sent for review", a["reviewed"], b["reviewed"]),
    ]
    if a["queue"]["labelled"]:
        rows.append(
            (f"right queue (of {a['queue']['labelled']})", _pct(a["queue"]["accuracy"]), _pct(b["queue"]["accuracy"]))
        )
    lines += [f"  {'':<34}{sides[0]:>10}{sides[1]:>10}"]
    lines += [f"  {name:<34}{x!s:>10}{y!s:>10}" for name, x, y in rows]
    return lines


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def render_comparison(data: dict[str, Any]) -> str:
    """`shipway rules compare`'s text: agreement, queue changes with examples, scores."""
    if not data["compared"]:
        which = f" {data['shadow_version']}" if data["shadow_version"] else ""
        return (
            f"no prediction of the window was decided by shadow rules{which} beside the live rules "
            f"({data['without_shadow']} without); apply some with `shipway rules apply FILE --mode shadow`"
        )
    lines = [
        f"shadow rules {data['shadow_version']} against live rules {data['live_version'] or NO_RULES}",
        f"{data['compared']} logged predictions decided by both; {data['agreed']} agree "
        f"({_pct(data['agreement'])})" + (f"; the canary decided {data['canary']}" if data["canary"] else ""),
    ]
    if data["disagreements"]:
        lines.append("changes (live -> shadow):")
        for d in data["disagreements"]:
            change = f"{d['live']} -> {d['candidate']}" if d["live"] != d["candidate"] else f"{d['live']}, other change"
            lines.append(f"  {change}: {d['count']}")
            for ex in d["examples"]:
                lines.append(
                    f"    {ex['request_id']}: {shown(ex['inputs'], [], 'input')}; "
                    f"fired live {ex['live_fired']}, shadow {ex['shadow_fired']}"
                )
    for kind in ("review", "fallback"):
        if data[kind]:
            lines.append(f"{kind} in shadow: " + ", ".join(f"{k} {v}" for k, v in data[kind].items()))
    if data["overrides_changed"]:
        lines.append(f"output overrides differ on {data['overrides_changed']}")
    lines += outcome_lines(data["outcomes"], ("live", "shadow"), data["compared"] - data["agreed"])
    if data["other_pairs"]:
        lines.append("other versions in the window: " + ", ".join(f"{k} ({v})" for k, v in data["other_pairs"].items()))
    return "\n".join(lines)
