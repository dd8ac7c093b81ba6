"""Rules over model outputs: a YAML file of ordered rules and decision tables,
checked against the service's schemas and compiled once to a Python function.

    from shipway.rules import load_rules
    rules = load_rules(Path("rules.yaml"), output_schema=..., labels=...)
    decision = rules.decide(request, output, meta)

See docs/rules.md for the file format.
"""

from shipway.rules.decision import Decision
from shipway.rules.diagnostics import Diagnostic
from shipway.rules.model import AGGREGATIONS, HIT_POLICIES
from shipway.rules.ruleset import RuleSet, load_rules

__all__ = ["AGGREGATIONS", "HIT_POLICIES", "Decision", "Diagnostic", "RuleSet", "load_rules"]
