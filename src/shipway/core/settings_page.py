"""docs/settings.md, generated from the declarations of core/settings.py."""

from __future__ import annotations

from shipway.core.settings import ENVIRONMENT, SETTINGS

__all__ = ["settings_markdown"]


def settings_markdown() -> str:
    """docs/settings.md, generated from SETTINGS (`shipway settings --markdown`)."""
    lines = [
        "# Settings",
        "",
        "Generated from `shipway.core.settings.SETTINGS` by `shipway settings --markdown > docs/settings.md`;",
        "a test fails when this page and the code disagree.",
        "",
        "Each setting is read, in order of precedence, from the `shipway serve` flag (where there is one),",
        "the environment (only `SHIPWAY_STORE_URL`), `shipway.toml` in the project folder, and the default.",
        "In `shipway.toml` a dotted key `serve.port` is `port` under a `[serve]` table.",
        "Paths are relative to the project folder.",
        "",
        "| key | type | default | flag | meaning |",
        "|---|---|---|---|---|",
    ]
    for s in SETTINGS:
        bounds = f" One of: {', '.join(s.choices)}." if s.choices else ""
        if s.minimum is not None or s.maximum is not None:
            lo = "" if s.minimum is None else f"{s.minimum:g}"
            hi = "" if s.maximum is None else f"{s.maximum:g}"
            bounds = f" Range: {lo} to {hi}." if lo and hi else (f" At least {lo}." if lo else f" At most {hi}.")
        flag = f"`{s.flag}`" if s.flag else ""
        lines.append(f"| `{s.key}` | {s.type.__name__} | `{s.default!r}` | {flag} | {s.help}{bounds} |")
    lines += ["", "## Environment", "", "| variable | meaning |", "|---|---|"]
    lines += [f"| `{name}` | {text} |" for name, text in ENVIRONMENT.items()]
    lines += [
        "",
        "## Example",
        "",
        "```toml",
        'name = "banking77"',
        'service = "service.py"',
        "",
        "[serve]",
        "port = 8000",
        "workers = 2",
        "",
        "[batching]",
        "max_batch_size = 64",
        "max_wait_ms = 2.0",
        "",
        "[log]",
        "sample_rate = 1.0",
        "```",
        "",
    ]
    return "\n".join(lines)
