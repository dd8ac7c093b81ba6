"""Settings: one declaration feeds the file, the flags and the docs."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipway.core.settings import SETTINGS, load_settings
from shipway.errors import ConfigError


def test_defaults_and_name_from_folder(tmp_path: Path) -> None:
    settings = load_settings(tmp_path)
    assert settings["serve.port"] == 8000
    assert settings["name"] == tmp_path.name
    assert set(settings) == {s.key for s in SETTINGS}


def test_file_then_overrides(tmp_path: Path) -> None:
    (tmp_path / "shipway.toml").write_text(
        'name = "x"\n[serve]\nport = 9001\nworkers = 3\n[batching]\nmax_wait_ms = 5\n'
    )
    settings = load_settings(tmp_path, {"serve.workers": 2})
    assert (settings["name"], settings["serve.port"], settings["serve.workers"]) == ("x", 9001, 2)
    assert settings["batching.max_wait_ms"] == 5.0


def test_unknown_key_suggests_the_right_one(tmp_path: Path) -> None:
    (tmp_path / "shipway.toml").write_text("[serve]\nprot = 1\n")
    with pytest.raises(ConfigError, match=r"unknown setting 'serve.prot'.*Did you mean 'serve.port'"):
        load_settings(tmp_path)


def test_wrong_type_and_range(tmp_path: Path) -> None:
    (tmp_path / "shipway.toml").write_text('[serve]\nport = "80"\n')
    with pytest.raises(ConfigError, match=r"'serve.port' .* must be int, got '80'"):
        load_settings(tmp_path)
    (tmp_path / "shipway.toml").write_text("[log]\nsample_rate = 1.5\n")
    with pytest.raises(ConfigError, match=r"sample_rate.*1.5.*at most 1"):
        load_settings(tmp_path)


def test_bad_toml(tmp_path: Path) -> None:
    (tmp_path / "shipway.toml").write_text("[serve\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(tmp_path)


def test_store_url_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPWAY_STORE_URL", "postgresql://u@h/db")
    assert load_settings(tmp_path)["store.url"] == "postgresql://u@h/db"


def test_settings_page_is_generated_from_the_code() -> None:
    from shipway.core.settings_page import settings_markdown

    page = Path(__file__).resolve().parent.parent / "docs" / "settings.md"
    assert page.read_text() == settings_markdown(), "regenerate: shipway settings --markdown > docs/settings.md"
