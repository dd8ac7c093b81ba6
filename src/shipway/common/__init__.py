"""Helpers every layer shares: one parser per text format, one way to suggest a name, one way
to merge the summaries of parts.

    shipway.common.times        durations and times (UTC unless a zone is given), the accepted range
    shipway.common.suggest      "did you mean" for a mistyped name
    shipway.common.positions    YAML read with the file:line:column of every node
    shipway.common.diagnostics  the problems found in a file, each at its position
    shipway.common.lazy         a package's names imported from their submodules on first use
    shipway.common.merging      summaries of parts merged field by field into the whole's

They import nothing of shipway but `shipway.errors`, so core may use them too.
"""
