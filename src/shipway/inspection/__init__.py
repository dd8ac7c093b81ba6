"""Inspection: trace poor model performance to the data and labels before anyone retrains.

`inspect_labels(path)` cross-validates a model on a labelled dataset and reports the rows whose
labels are likely wrong (confident learning, via cleanlab) and the slices where the model does
worst. Needs the `inspect` extra: pip install 'shipway[inspect]'.
"""

from shipway.inspection.label_issues import LabelReport, inspect_labels, write_report

__all__ = ["LabelReport", "inspect_labels", "write_report"]
