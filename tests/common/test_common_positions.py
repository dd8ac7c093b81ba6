"""The one YAML-with-positions reader and the one diagnostics type (shipway.common)."""

from __future__ import annotations

import pytest

from shipway.common.diagnostics import Diagnostic, Diagnostics
from shipway.common.positions import YamlSyntaxError, compose, load_located, position, where


def test_nodes_and_data_keep_their_lines() -> None:
    text = "name: x\ncases:\n  - input: 1\n  - input: 2\n"
    root = compose(text, "s.yaml")
    assert root is not None
    key, value = root.value[1]
    assert position(key) == (2, 1) and position(value.value[1]) == (4, 5)
    data = load_located(text, "s.yaml")
    assert where(data, "cases") == "s.yaml:2" and data["cases"].item_lines == [3, 4]
    assert where(data["cases"], 1) == "s.yaml:4"


def test_invalid_yaml_is_one_diagnostic_where_the_parser_stopped() -> None:
    for read in (compose, load_located):
        with pytest.raises(YamlSyntaxError) as caught:
            read("a: 1\n b: 2\nc: 3\n", "f.yaml")
        found = caught.value.diagnostic
        assert (found.file, found.line, found.column, found.severity) == ("f.yaml", 2, 3, "error")
        assert str(found).startswith("f.yaml:2:3: error: invalid YAML: mapping values are not allowed")


def test_a_repeated_key_names_both_lines() -> None:
    with pytest.raises(YamlSyntaxError, match=r"f\.yaml:3: error: the key 'a' appears twice .*first at line 1"):
        load_located("a: 1\nb: 2\na: 3\n", "f.yaml")


def test_diagnostics_print_what_is_known_in_file_order() -> None:
    diags = Diagnostics("r.yaml")
    diags.add("warning", 5, 0, "late")
    diags.add("error", 2, 7, "early")
    diags.add("error", 2, 7, "early")  # reported once
    assert [str(d) for d in diags.sorted()] == ["r.yaml:2:7: error: early", "r.yaml:5: warning: late"]
    assert diags.summary("nothing was loaded") == (
        "r.yaml has 1 error; nothing was loaded:\nr.yaml:2:7: error: early\nr.yaml:5: warning: late"
    )
    assert Diagnostics("ok.yaml").summary("x") is None
    assert str(Diagnostic("f", 0, 0, "error", "empty")) == "f: error: empty"
