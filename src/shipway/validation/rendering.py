"""Rendering a report: a terminal table, JUnit XML for CI, JSON for machines."""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from shipway.expect.fields import shorten
from shipway.validation.results import CaseResult, Changes, Report

__all__ = ["case_text", "changes_text", "ids_line", "junit_xml", "table", "write_json", "write_junit"]

LABELS = {"passed": "PASS", "failed": "FAIL", "error": "ERROR", "xfail": "XFAIL", "xpass": "XPASS"}
ALL_ROWS_UP_TO = 50  # longer suites list only the cases that did not pass, unless asked for all


def ids_line(ids: dict[str, Any]) -> str:
    names = {"model_version": "model", "rules_version": "rules", "dataset_version": "dataset", "run_id": "run"}
    return "  ".join(f"{short} {ids[key]}" for key, short in names.items() if ids.get(key))


def _row_text(r: CaseResult) -> str:
    if r.status == "passed":
        return "; ".join(dict.fromkeys(c.message for c in r.checks))  # two checks often see the same
    if r.status == "xpass":
        return "passed, though marked expect_failure: the known problem is gone; remove the mark"
    return r.problem


def table(report: Report, verbose: bool = False, width: int = 120) -> str:
    """The run as a table (every case, or only those that did not pass), then details and a summary."""
    show_all = verbose or len(report.results) <= ALL_ROWS_UP_TO
    rows = [r for r in report.results if show_all or r.status != "passed"]
    lines: list[str] = []
    if rows:
        suite_w = min(24, max(len("suite"), *(len(r.suite) for r in rows)))
        case_w = min(44, max(len("case"), *(len(r.case) for r in rows)))
        rest = max(30, width - suite_w - case_w - 12)
        lines.append(f"{'suite':<{suite_w}}  {'case':<{case_w}}  {'':<5}  result")
        for r in rows:
            lines.append(
                f"{_cut(r.suite, suite_w):<{suite_w}}  {_cut(r.case, case_w):<{case_w}}  "
                f"{LABELS[r.status]:<5}  {_cut(_row_text(r), rest)}"
            )
    hidden = len(report.results) - len(rows)
    if hidden:
        lines.append(f"({hidden} passing cases not listed; -v lists them)")
    for r in report.results:
        if r.status in ("failed", "error", "xfail"):
            lines += ["", *case_text(r)]
    lines += ["", report.summary() + (f"  ·  {ids_line(report.ids)}" if ids_line(report.ids) else "")]
    return "\n".join(lines)


def _cut(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def case_text(r: CaseResult) -> list[str]:
    """A failing case in full: where it is, what it expects, what was seen, and why."""
    where = f"  ({r.file}:{r.line})" if r.file else ""
    head = {"failed": "FAILED", "error": "ERROR", "xfail": "EXPECTED FAILURE"}.get(r.status, r.status.upper())
    lines = [f"{head} {r.id}{where}"]
    if r.reason:
        lines.append(f"  why expected: {r.reason}")
    lines.append(f"  input:   {shorten(r.inputs[0], 110)}")
    for check in r.checks:
        if not check.passed:
            lines.append(f"  expects: {check.expectation}")
            lines.append(f"  seen:    {check.message}")
    if r.diagnosis is not None:
        lines += [f"  {line}" for line in r.diagnosis.lines()]
        ids = ids_line(r.diagnosis.ids)
        if ids:
            lines.append(f"  ids: {ids}")
    return lines


def junit_xml(report: Report) -> bytes:
    """JUnit XML in the shape CI systems read (Jenkins, GitLab, GitHub test reporters)."""
    counts = report.counts
    root = ET.Element(
        "testsuites",
        name="shipway validate",
        tests=str(len(report.results)),
        failures=str(counts["failed"]),
        errors=str(counts["error"]),
        skipped=str(counts["xfail"]),
        time=f"{report.seconds:.3f}",
    )
    by_suite: dict[str, list[CaseResult]] = {}
    for r in report.results:
        by_suite.setdefault(r.suite, []).append(r)
    stamp = datetime.fromtimestamp(report.started_at or 0, UTC).isoformat(timespec="seconds")
    for name, results in by_suite.items():
        suite_counts = {s: sum(r.status == s for r in results) for s in ("failed", "error", "xfail")}
        element = ET.SubElement(
            root,
            "testsuite",
            name=name,
            tests=str(len(results)),
            failures=str(suite_counts["failed"]),
            errors=str(suite_counts["error"]),
            skipped=str(suite_counts["xfail"]),
            time=f"{sum(r.seconds for r in results):.3f}",
            timestamp=stamp,
            hostname=socket.gethostname(),
        )
        properties = ET.SubElement(element, "properties")
        for target in report.targets:
            ET.SubElement(properties, "property", name="target", value=str(target["target"]))
            for key, value in target["ids"].items():
                if value is not None:
                    ET.SubElement(properties, "property", name=key, value=str(value))
        for r in results:
            attrs = {"classname": r.suite, "name": r.case, "time": f"{r.seconds:.4f}"}
            if r.file:
                attrs |= {"file": r.file, "line": str(r.line or 0)}
            case = ET.SubElement(element, "testcase", attrs)
            body = "\n".join(case_text(r))
            if r.status == "failed":
                ET.SubElement(case, "failure", message=_xml_safe(r.problem), type="expectation").text = _xml_safe(body)
            elif r.status == "error":
                ET.SubElement(case, "error", message=_xml_safe(r.problem), type="service").text = _xml_safe(body)
            elif r.status == "xfail":
                message = f"expected failure: {r.reason or r.problem}"
                ET.SubElement(case, "skipped", message=_xml_safe(message), type="xfail").text = _xml_safe(body)
            elif r.status == "xpass":
                ET.SubElement(case, "system-out").text = "passed, though marked expect_failure"
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _xml_safe(text: str) -> str:
    # XML 1.0 cannot hold most control characters, and a model's input may contain them.
    return "".join(ch if ch in "\t\n\r" or ord(ch) >= 0x20 else f"\\x{ord(ch):02x}" for ch in text)


def write_junit(report: Report, path: str | Path) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(junit_xml(report))


def write_json(report: Report, path: str | Path) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2, default=str))


def changes_text(report: Report, changes: Changes, run: int) -> str:
    """One scheduled run, as `shipway validate --every` prints it: only what changed, in full."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
    head = f"[{stamp} UTC] run {run + 1}: {report.summary()}"
    if not changes:
        still = f", {changes.still_failing} still failing (reported before)" if changes.still_failing else ""
        return f"{head}; no change{still}"
    lines = [head]
    for r in changes.newly_failing:
        lines += ["", *case_text(r)]
    if changes.newly_passing:
        lines += ["", "passing again: " + ", ".join(r.id for r in changes.newly_passing)]
    return "\n".join(lines)
