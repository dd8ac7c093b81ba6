"""The templates capability's error.

It belongs in shipway/errors.py, under ConfigError; it lives here until that module gains it.
"""

from __future__ import annotations

from shipway.errors import ConfigError

__all__ = ["TemplateError"]


class TemplateError(ConfigError):
    """`shipway new` or `shipway update` cannot go on: a bad choice or name, a folder that
    exists, a project that is not under git or has uncommitted changes, a template version
    that cannot be found."""
