"""Validation: suites of known cases run against a service, with a diagnosis per failure.

    suites = load_suites(["validation/"])
    report = run_suites(suites, InProcessTarget(pipeline))   # or HttpTarget("http://...")
    report.ok, report.failures, report.failures[0].diagnosis.summary

See docs/validation.md for the suite format and the commands.
"""

from shipway.errors import SuiteError, TargetError
from shipway.expect.cases import Case, Direction, Failed, Invariance
from shipway.expect.diagnosis import Diagnosis, diagnose
from shipway.expect.expectations import Check, Expectation
from shipway.expect.explain import explain
from shipway.expect.fields import Fields
from shipway.expect.parsing import parse_expectations
from shipway.validation.notify import Delivery, notify, slack_message, webhook_payload
from shipway.validation.rendering import junit_xml, table, write_json, write_junit
from shipway.validation.results import CaseResult, Changes, Report
from shipway.validation.runner import open_target, run_suites, validate
from shipway.validation.suite import Suite, find_suites, load_suite, load_suites, parse_suite
from shipway.validation.targets import HttpTarget, InProcessTarget, Target, load_pipeline
from shipway.validation.watch import Watch, watch

__all__ = [
    "Case",
    "CaseResult",
    "Changes",
    "Check",
    "Delivery",
    "Diagnosis",
    "Direction",
    "Expectation",
    "Failed",
    "Fields",
    "HttpTarget",
    "InProcessTarget",
    "Invariance",
    "Report",
    "Suite",
    "SuiteError",
    "Target",
    "TargetError",
    "Watch",
    "diagnose",
    "explain",
    "find_suites",
    "junit_xml",
    "load_pipeline",
    "load_suite",
    "load_suites",
    "notify",
    "open_target",
    "parse_expectations",
    "parse_suite",
    "run_suites",
    "slack_message",
    "table",
    "validate",
    "watch",
    "webhook_payload",
    "write_json",
    "write_junit",
]
