"""Batch scoring: datasets through the project's pipeline into Parquet (docs/scaling.md)."""

from shipway.scoring.columns import OutputColumns
from shipway.scoring.score import ScoreJob, ScoreSummary, score

__all__ = ["OutputColumns", "ScoreJob", "ScoreSummary", "score"]
