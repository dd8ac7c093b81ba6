"""Helpers every layer shares: one parser per text format and one way to suggest a name.

    shipway.common.times        durations and times (UTC unless a zone is given), the accepted range
    shipway.common.suggest      "did you mean" for a mistyped name
    shipway.common.positions    YAML read with the file:line:column of every node
    shipway.common.diagnostics  the problems found in a file, each at its position

They import nothing of shipway but `shipway.errors`, so core may use them too.
"""
