"""Offline engines: run a job over a dataset's batches in this process, in local worker
processes, or on a Ray cluster, with the same job object (docs/scaling.md).

A job is a picklable object with `setup()` (once per worker: load the model) and
`__call__(rows)`, which takes a batch of rows (dicts) and returns either a pyarrow Table
(rows to write, in order) or a partial summary that merges with `merge(a, b)`. The
engines stream the results back in the dataset's order.

    from shipway.engine import Source, run
    for result in run(job, Source.open("data.csv"), engine="local", jobs=2):
        ...
"""

from shipway.engine.row_batches import FORMATS, Source
from shipway.engine.run import ENGINES, Job, run

__all__ = ["ENGINES", "FORMATS", "Job", "Source", "run"]
