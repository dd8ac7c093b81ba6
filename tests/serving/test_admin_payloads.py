"""Admin bodies checked by their pydantic models: the first bad key named, with the usage."""

from __future__ import annotations

import pytest

from shipway.errors import PayloadError
from shipway.serving.admin_payloads import ModelDeploy, RulesApply, RulesRollback, payload


def test_good_bodies_are_read() -> None:
    rules = payload(RulesApply, b'{"source": "rules: []", "mode": "canary", "canary": 1, "actor": "ana", "x": 1}')
    assert (rules.source, rules.mode, rules.canary, rules.actor) == ("rules: []", "canary", 1, "ana")
    assert payload(RulesRollback, b"").version is None
    assert payload(ModelDeploy, b'{"artifacts": "a/b"}').artifacts == "a/b"


@pytest.mark.parametrize(
    ("model", "body", "message"),
    [
        (RulesApply, b"{}", 'POST /admin/rules takes {"source"'),
        (RulesApply, b'{"source": "  "}', 'POST /admin/rules takes {"source"'),
        (RulesApply, b'{"source": "x", "mode": 3}', "'mode' must be a string, not int 3"),
        (RulesApply, b'{"source": "x", "canary": true}', "'canary' must be a number between 0 and 1, not bool True"),
        (ModelDeploy, b'{"artifacts": ""}', 'POST /admin/model takes {"artifacts"'),
        (RulesRollback, b'{"version": 2}', "'version' must be a string, not int 2"),
        (RulesRollback, b"[1]", "must be a JSON object, not list"),
        (RulesRollback, b"{nope", "not valid JSON"),
    ],
)
def test_bad_bodies_are_refused_naming_the_key(model: type, body: bytes, message: str) -> None:
    with pytest.raises(PayloadError, match=message.replace("(", r"\(").replace("{", r"\{")):
        payload(model, body)
