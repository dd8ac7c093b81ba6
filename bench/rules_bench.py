"""Rules: evaluations per second of shipway against zen-engine, rule-engine and plain Python.

    .venv/bin/python bench/rules_bench.py [--quick]

Two workloads over a BANKING77-style model output, each written once as data
and rendered into every engine's own form:
  (a) a 50-row first-hit decision table over intent and probability;
  (b) 20 ordered rules (every matching rule fires; later ones override).
Every engine must give the same queue, review flag and fired rules on every
sample before it is timed. Timings are best of several repeats (timeit-style)
over a fixed set of samples, all in one run, reported as ratios. Then a
backtest: `decide_many` over 1,000,000 synthetic logged predictions, and
the same end to end from JSON lines.

Writes bench/results/rules.json and prints a Markdown section for docs/benchmarks.md.
Needs `pip install zen-engine rule-engine` (an engine that is not installed is skipped).
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from shipway.rules import Decision, load_rules

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results" / "rules.json"
MANIFEST = ROOT / "examples" / "banking77" / "artifacts" / "manifest.json"
VERSION = "bench"

Row = tuple[dict[str, Any], dict[str, Any], dict[str, Any]]
Clause = tuple[str, Any]  # ("intent", [labels]) | ("p", (low, high)) | ("margin", (low, high)) | ("bucket", n)


def labels() -> list[str]:
    if MANIFEST.exists():
        return list(json.loads(MANIFEST.read_text())["labels"])
    return [f"intent_{i}" for i in range(77)]


# -- the logic, once, as data --------------------------------------------------


def table_rows(names: list[str]) -> list[tuple[list[str] | None, tuple[float, float] | None, str]]:
    """49 rows of (intents, probability interval [low, high)) -> queue, then a catch-all."""
    rows: list[tuple[list[str] | None, tuple[float, float] | None, str]] = []
    for i in range(49):
        intents = [names[(3 * i) % len(names)], names[(3 * i + 31) % len(names)]]
        low = round((i % 5) * 0.2, 1)
        rows.append((intents, (low, round(low + 0.2, 1)), f"q{i % 7}"))
    rows.append((None, None, "general"))
    return rows


def ordered_rules(names: list[str]) -> list[tuple[str, list[Clause], dict[str, Any]]]:
    """20 rules: a condition (clauses joined by and) and actions (queue or review)."""
    rules: list[tuple[str, list[Clause], dict[str, Any]]] = []
    for i in range(20):
        clauses: list[Clause] = []
        if i % 2 == 0:
            clauses.append(("intent", [names[(5 * i + k) % len(names)] for k in range(3)]))
        if i % 3 != 1:
            low = round((i % 4) * 0.2, 1)
            clauses.append(("p", (low, round(low + 0.3, 1))))
        if i % 4 == 3:
            clauses.append(("margin", (0.0, 0.3)))
        if i % 5 == 4:
            clauses.append(("bucket", i % 10))
        actions: dict[str, Any] = {"queue": f"q{i}"} if i % 3 != 2 else {"review": True}
        rules.append((f"r{i}", clauses, actions))
    return rules


def samples(names: list[str], n: int, seed: int = 7) -> list[Row]:
    rng = random.Random(seed)
    out: list[Row] = []
    for i in range(n):
        p = round(rng.random(), 3)
        second = round(rng.random() * (1 - p), 3)
        alternatives = [
            {"intent": rng.choice(names), "probability": second},
            {"intent": rng.choice(names), "probability": round(second / 2, 3)},
            {"intent": rng.choice(names), "probability": round(second / 4, 3)},
        ]
        output = {"intent": rng.choice(names), "probability": p, "alternatives": alternatives}
        out.append(({"text": f"message {i}"}, output, {"request_id": f"r{i}", "bucket": rng.randrange(10)}))
    return out


# -- shipway -------------------------------------------------------------------


def shipway_table_yaml(rows: list[Any]) -> str:
    lines = []
    for intents, interval, queue in rows:
        cell = ", ".join(json.dumps(i) for i in intents) if intents else "-"
        span = f"[{interval[0]}..{interval[1]})" if interval else "-"
        lines.append(f"        {cell} | {span} | {queue}")
    return (
        f"version: {VERSION}\ndefault: {{queue: general}}\nrules:\n  - table:\n      name: t\n      hit_policy: first\n"
        "      inputs: [output.intent, output.probability]\n      outputs: [queue]\n      rows: |\n"
        + "\n".join(lines)
        + "\n"
    )


def shipway_condition(clauses: list[Clause]) -> str:
    parts = []
    for kind, value in clauses:
        if kind == "intent":
            parts.append(f"output.intent in {json.dumps(value)}")
        elif kind == "p":
            parts.append(f"{value[0]} <= output.probability < {value[1]}")
        elif kind == "margin":
            parts.append(f"{value[0]} <= output.probability - output.alternatives[0].probability < {value[1]}")
        else:
            parts.append(f"meta.bucket == {value}")
    return " and ".join(parts) or "true"


def shipway_rules_yaml(rules: list[Any]) -> str:
    out = [f"version: {VERSION}", "default: {queue: general}", "rules:"]
    for name, clauses, actions in rules:
        then = dict(actions)
        out += [
            f"  - name: {name}",
            f"    when: {json.dumps(shipway_condition(clauses))}",
            f"    then: {json.dumps(then)}",
        ]
    return "\n".join(out) + "\n"


# -- plain Python, as a person would write it ------------------------------------


def hand_table_source(rows: list[Any]) -> str:
    lines = [
        "def hand_table(request, output, meta):",
        "    intent = output['intent']",
        "    p = output['probability']",
    ]
    keyword = "if"
    for number, (intents, interval, queue) in enumerate(rows, start=1):
        if intents is None:
            lines.append("    else:")
        else:
            lines.append(f"    {keyword} intent in {set(intents)!r} and {interval[0]} <= p < {interval[1]}:")
        lines.append(f"        return Decision({queue!r}, False, None, False, {{}}, ['t#{number}'], {VERSION!r})")
        keyword = "elif"
    return "\n".join(lines) + "\n"


def hand_condition(clauses: list[Clause]) -> str:
    parts = []
    for kind, value in clauses:
        if kind == "intent":
            parts.append(f"intent in {set(value)!r}")
        elif kind == "p":
            parts.append(f"{value[0]} <= p < {value[1]}")
        elif kind == "margin":
            parts.append(f"{value[0]} <= p - alt0 < {value[1]}")
        else:
            parts.append(f"bucket == {value}")
    return " and ".join(parts) or "True"


def hand_rules_source(rules: list[Any]) -> str:
    lines = [
        "def hand_rules(request, output, meta):",
        "    intent = output['intent']",
        "    p = output['probability']",
        "    alt0 = output['alternatives'][0]['probability']",
        "    bucket = meta['bucket']",
        "    queue, review, fired = 'general', False, []",
    ]
    for name, clauses, actions in rules:
        lines.append(f"    if {hand_condition(clauses)}:")
        if "queue" in actions:
            lines.append(f"        queue = {actions['queue']!r}")
        else:
            lines.append("        review = True")
        lines.append(f"        fired.append({name!r})")
    lines.append(f"    return Decision(queue, review, None, False, {{}}, fired, {VERSION!r})")
    return "\n".join(lines) + "\n"


def hand_functions(rows: list[Any], rules: list[Any]) -> tuple[Callable[..., Decision], Callable[..., Decision]]:
    namespace: dict[str, Any] = {"Decision": Decision}
    exec(hand_table_source(rows) + hand_rules_source(rules), namespace)
    return namespace["hand_table"], namespace["hand_rules"]


# -- rule-engine ---------------------------------------------------------------


def rule_engine_functions(rows: list[Any], rules: list[Any]) -> tuple[Callable[..., Any], Callable[..., Any]] | None:
    try:
        import rule_engine
    except ImportError:
        return None

    compiled_rows = []
    for number, (intents, interval, queue) in enumerate(rows, start=1):
        text = "true"
        if intents is not None:
            text = f"intent in {json.dumps(intents)} and probability >= {interval[0]} and probability < {interval[1]}"
        compiled_rows.append((rule_engine.Rule(text), queue, f"t#{number}"))

    def condition(clauses: list[Clause]) -> str:
        parts = []
        for kind, value in clauses:
            if kind == "intent":
                parts.append(f"intent in {json.dumps(value)}")
            elif kind == "p":
                parts.append(f"probability >= {value[0]} and probability < {value[1]}")
            elif kind == "margin":
                margin = "probability - alternatives[0].probability"
                parts.append(f"{margin} >= {value[0]} and {margin} < {value[1]}")
            else:
                parts.append(f"bucket == {value}")
        return " and ".join(parts) or "true"

    compiled_rules = [(rule_engine.Rule(condition(c)), a, name) for name, c, a in rules]

    def table(request: Any, output: Any, meta: Any) -> tuple[str, bool, list[str]]:
        for rule, queue, name in compiled_rows:
            if rule.matches(output):
                return queue, False, [name]
        return "general", False, []

    def ordered(request: Any, output: Any, meta: Any) -> tuple[str, bool, list[str]]:
        context = {**output, "bucket": meta["bucket"]}
        queue, review, fired = "general", False, []
        for rule, actions, name in compiled_rules:
            if rule.matches(context):
                queue = actions.get("queue", queue)
                review = review or actions.get("review", False)
                fired.append(name)
        return queue, review, fired

    return table, ordered


# -- zen-engine (GoRules) --------------------------------------------------------


def zen_graph(inputs: list[tuple[str, str]], outputs: list[str], cells: list[list[str]], policy: str) -> str:
    content = {
        "hitPolicy": policy,
        "inputs": [{"id": f"i{k}", "name": name, "field": field} for k, (name, field) in enumerate(inputs)],
        "outputs": [{"id": f"o{k}", "name": name, "field": name} for k, name in enumerate(outputs)],
        "rules": [
            {
                "_id": f"r{n}",
                **{f"i{k}": c for k, c in enumerate(row[: len(inputs)])},
                **{f"o{k}": c for k, c in enumerate(row[len(inputs) :])},
            }
            for n, row in enumerate(cells)
        ],
    }
    graph = {
        "nodes": [
            {"id": "in", "type": "inputNode", "name": "request", "position": {"x": 0, "y": 0}},
            {
                "id": "t",
                "type": "decisionTableNode",
                "name": "table",
                "position": {"x": 200, "y": 0},
                "content": content,
            },
            {"id": "out", "type": "outputNode", "name": "response", "position": {"x": 400, "y": 0}},
        ],
        "edges": [
            {"id": "e1", "sourceId": "in", "targetId": "t", "type": "edge"},
            {"id": "e2", "sourceId": "t", "targetId": "out", "type": "edge"},
        ],
    }
    return json.dumps(graph)


def zen_functions(rows: list[Any], rules: list[Any]) -> tuple[Callable[..., Any], Callable[..., Any]] | None:
    try:
        import zen
    except ImportError:
        return None
    engine = zen.ZenEngine()
    cells = []
    for number, (intents, interval, queue) in enumerate(rows, start=1):
        intent_cell = ", ".join(json.dumps(i) for i in intents) if intents else ""
        p_cell = f"[{interval[0]}..{interval[1]})" if interval else ""
        cells.append([intent_cell, p_cell, json.dumps(queue), json.dumps(f"t#{number}")])
    table_decision = engine.create_decision(
        zen_graph([("intent", "intent"), ("probability", "probability")], ["queue", "fired"], cells, "first")
    )
    rule_cells = []
    for name, clauses, actions in rules:
        row = ["", "", "", ""]
        for kind, value in clauses:
            if kind == "intent":
                row[0] = ", ".join(json.dumps(v) for v in value)
            elif kind == "p":
                row[1] = f"[{value[0]}..{value[1]})"
            elif kind == "margin":
                row[2] = f"[{value[0]}..{value[1]})"
            else:
                row[3] = str(value)
        queue = json.dumps(actions["queue"]) if "queue" in actions else ""
        rule_cells.append([*row, queue, "true" if actions.get("review") else "false", json.dumps(name)])
    rules_decision = engine.create_decision(
        zen_graph(
            [
                ("intent", "intent"),
                ("probability", "probability"),
                ("margin", "probability - alternatives[0].probability"),
                ("bucket", "bucket"),
            ],
            ["queue", "review", "fired"],
            rule_cells,
            "collect",
        )
    )

    def table(request: Any, output: Any, meta: Any) -> tuple[str, bool, list[str]]:
        result = table_decision.evaluate(output)["result"]
        return result.get("queue", "general"), False, [result["fired"]] if result else []

    def ordered(request: Any, output: Any, meta: Any) -> tuple[str, bool, list[str]]:
        hits = rules_decision.evaluate({**output, "bucket": meta["bucket"]})["result"]
        queue, review, fired = "general", False, []
        for hit in hits:
            queue = hit.get("queue") or queue
            review = review or bool(hit.get("review"))
            fired.append(hit["fired"])
        return queue, review, fired

    return table, ordered


# -- timing --------------------------------------------------------------------


def per_call_us(engines: dict[str, Callable[..., Any]], rows: dict[str, list[Row]], repeats: int) -> dict[str, float]:
    """Best of `repeats` passes over each engine's rows, in microseconds per call.

    The engines take turns pass by pass, so a slow patch of the machine hits them alike.
    """
    best = dict.fromkeys(engines, float("inf"))
    for name, fn in engines.items():  # warm up
        for request, output, meta in rows[name][:50]:
            fn(request, output, meta)
    for _ in range(repeats):
        for name, fn in engines.items():
            gc.collect()
            started = time.perf_counter()
            for request, output, meta in rows[name]:
                fn(request, output, meta)
            best[name] = min(best[name], time.perf_counter() - started)
    return {name: best[name] / len(rows[name]) * 1e6 for name in engines}


def summary(result: Any) -> tuple[Any, bool, list[str]]:
    if isinstance(result, Decision):
        return result.queue, result.review, result.fired
    return result[0], result[1], list(result[2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer samples and a 100,000-row backtest")
    args = parser.parse_args()
    fast_n, slow_n, repeats = (500, 50, 3) if args.quick else (2000, 200, 7)
    backtest_rows = 100_000 if args.quick else 1_000_000

    names = labels()
    rows, rules = table_rows(names), ordered_rules(names)
    table_set = load_rules(shipway_table_yaml(rows), output_schema=OUTPUT_SCHEMA, meta_schema=META_SCHEMA, labels=names)
    rules_set = load_rules(
        shipway_rules_yaml(rules), output_schema=OUTPUT_SCHEMA, meta_schema=META_SCHEMA, labels=names
    )
    hand_table, hand_rules = hand_functions(rows, rules)
    engines: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
        "python": (hand_table, hand_rules),
        "shipway": (table_set.decide, rules_set.decide),
    }
    for name, make in (("rule-engine", rule_engine_functions), ("zen-engine", zen_functions)):
        functions = make(rows, rules)
        if functions is None:
            print(f"{name} is not installed: skipped (pip install {name})", file=sys.stderr)
        else:
            engines[name] = functions

    data = samples(names, fast_n)
    # Every engine must agree on every sample before anything is timed.
    for index, workload in enumerate(("table", "rules")):
        expected = [summary(engines["python"][index](*row)) for row in data]
        hits = sum(1 for e in expected if e[2])
        assert hits > len(data) // 10, f"the {workload} workload fires too rarely to measure anything ({hits})"
        for name, functions in engines.items():
            got = [summary(functions[index](*row)) for row in data]
            bad = [i for i, (a, b) in enumerate(zip(expected, got, strict=True)) if a != b]
            assert not bad, (
                f"{name} disagrees on the {workload} workload, e.g. {data[bad[0]]}: {got[bad[0]]} vs {expected[bad[0]]}"
            )

    results: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "samples": {"fast": fast_n, "slow": slow_n, "repeats": repeats},
    }
    for index, workload in enumerate(("table_50_rows", "rules_20_ordered")):
        subsets = {name: data if name in ("python", "shipway") else data[:slow_n] for name in engines}
        timings = per_call_us({name: f[index] for name, f in engines.items()}, subsets, repeats)
        base = timings["python"]
        results[workload] = {
            name: {
                "us_per_call": round(us, 3),
                "calls_per_s": round(1e6 / us),
                "x_python": round(us / base, 2),
                "x_shipway": round(us / timings["shipway"], 1),
            }
            for name, us in timings.items()
        }

    results["backtest"] = backtest(rules_set, names, backtest_rows)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(markdown(results))


OUTPUT_SCHEMA = {
    "type": "object",
    "required": ["intent", "probability", "alternatives"],
    "properties": {
        "intent": {"type": "string"},
        "probability": {"type": "number"},
        "alternatives": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"intent": {"type": "string"}, "probability": {"type": "number"}},
            },
        },
    },
}
META_SCHEMA = {"type": "object", "properties": {"request_id": {"type": "string"}, "bucket": {"type": "integer"}}}


def backtest(rules_set: Any, names: list[str], n: int) -> dict[str, Any]:
    """decide_many over n logged predictions, in memory and end to end from JSON lines."""
    rows = samples(names, n, seed=11)
    started = time.perf_counter()
    decisions = rules_set.decide_many(rows)
    in_memory = time.perf_counter() - started
    changed = sum(1 for d in decisions if d.queue != "general")
    lines = [orjson.dumps({"input": r, "output": o, "meta": m}) for r, o, m in rows]
    del rows, decisions
    gc.collect()
    started = time.perf_counter()
    parsed = (orjson.loads(line) for line in lines)
    decisions = rules_set.decide_many((p["input"], p["output"], p["meta"]) for p in parsed)
    end_to_end = time.perf_counter() - started
    return {
        "rows": n,
        "rules": "20 ordered rules",
        "decide_many_s": round(in_memory, 3),
        "from_json_lines_s": round(end_to_end, 3),
        "rows_per_s": round(n / in_memory),
        "routed_away_from_general": changed,
        "decisions": len(decisions),
    }


def markdown(results: dict[str, Any]) -> str:
    out = [
        "## Rules",
        "",
        "Per-call time of the same logic in each engine, over a BANKING77-style model output, measured in one run "
        f"(best of {results['samples']['repeats']} passes; `bench/rules_bench.py`). Every engine gives the same "
        "queue, review flag and fired rules on every sample before it is timed. `python` is the logic hand-written "
        "as if/elif (the limit); zen-engine and rule-engine are called from Python.",
        "",
    ]
    titles = {"table_50_rows": "50-row decision table (first hit)", "rules_20_ordered": "20 ordered rules"}
    for workload, title in titles.items():
        out += [
            f"**{title}**",
            "",
            "| engine | µs per call | calls per s | × hand-written Python | × shipway |",
            "|---|---:|---:|---:|---:|",
        ]
        for name, r in sorted(results[workload].items(), key=lambda kv: kv[1]["us_per_call"]):
            out.append(
                f"| {name} | {r['us_per_call']:.2f} | {r['calls_per_s']:,} | {r['x_python']:.2f} | {r['x_shipway']:.1f} |"
            )
        out.append("")
    b = results["backtest"]
    out += [
        f"**Backtest**: `RuleSet.decide_many` over {b['rows']:,} synthetic logged predictions ({b['rules']}): "
        f"{b['decide_many_s']:.2f} s ({b['rows_per_s']:,} rows/s); parsing the same rows from JSON lines "
        f"(orjson) and deciding: {b['from_json_lines_s']:.2f} s.",
        "",
        f"Python {results['machine']['python']} on {results['machine']['platform']}.",
    ]
    return "\n".join(out)


if __name__ == "__main__":
    main()
