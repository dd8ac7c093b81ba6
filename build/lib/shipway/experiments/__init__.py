"""Experiments: offline runs of the pipeline and its rules over logged traffic or datasets."""
