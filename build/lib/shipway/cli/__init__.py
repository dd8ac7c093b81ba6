"""The `shipway` command: parse arguments, call one function, render the result."""

from shipway.cli.main import main

__all__ = ["main"]
