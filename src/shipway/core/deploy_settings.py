"""The settings of deploys, declared as data beside the rest (core/settings.py gathers them all).

`ROLLOUT_SETTINGS`: the rollout plan (docs/deploy.md#rollouts), steps, then guards on the
prediction log's figures. `BUILD_SETTINGS`: the image `shipway build` writes and the manifests
`shipway deploy --to kubernetes` renders (docs/deploy.md).
"""

from __future__ import annotations

from shipway.core.setting import Setting

__all__ = ["BUILD_SETTINGS", "ROLLOUT_SETTINGS"]

ROLLOUT_SETTINGS: tuple[Setting, ...] = (
    Setting(
        "rollout.steps",
        list,
        [
            {"mode": "shadow", "duration": "30m"},
            {"mode": "canary", "share": 0.05, "duration": "30m"},
            {"mode": "canary", "share": 0.25, "duration": "1h"},
            {"mode": "promote"},
        ],
        'The rollout\'s steps, in order: tables `{mode = "shadow", duration = "30m"}` (the candidate also predicts, answering nobody; `share` samples the traffic shadowed), `{mode = "canary", share = 0.05, duration = "1h"}` (that share of requests answered by the candidate), and last `{mode = "promote"}`.',
    ),
    Setting(
        "rollout.check_every_s",
        float,
        2.0,
        "How often the rollout controller checks the guards on the rollups (error rate, latency) and the step's time, in every `shipway serve` worker or in `shipway rollout run`; a compare-and-set in the store lets one of them make each change.",
        minimum=0.5,
    ),
    Setting(
        "rollout.deep_check_every_s",
        float,
        60.0,
        "How often the controller also reads the window's records for the agreement, accuracy and suites guards (and always before a step ends).",
        minimum=1,
    ),
    Setting(
        "rollout.in_serve",
        bool,
        True,
        "Run the rollout controller inside `shipway serve`. Turn off when `shipway rollout run` runs it elsewhere.",
    ),
    Setting(
        "rollout.window_s",
        float,
        900.0,
        "The guards judge the figures of the last this many seconds of the current step.",
        minimum=1,
    ),
    Setting(
        "rollout.min_requests",
        int,
        100,
        "Fewest candidate requests in the guards' window before the error, latency and agreement guards judge, and before a step may end.",
        minimum=1,
    ),
    Setting(
        "rollout.min_labelled",
        int,
        50,
        "Fewest labelled requests of each version in the window before the accuracy guard judges.",
        minimum=1,
    ),
    Setting(
        "rollout.max_error_rate",
        float,
        0.02,
        "Guard: the candidate's error rate (answers with status 400 and above) may not exceed this; 1 turns it off.",
        minimum=0,
        maximum=1,
    ),
    Setting(
        "rollout.max_p99_ms",
        float,
        0.0,
        "Guard: the candidate's p99 latency in milliseconds may not exceed this; 0 turns it off.",
        minimum=0,
    ),
    Setting(
        "rollout.max_p99_ratio",
        float,
        2.0,
        "Guard: the candidate's p99 latency may not exceed the live version's times this; 0 turns it off.",
        minimum=0,
    ),
    Setting(
        "rollout.min_agreement",
        float,
        0.0,
        "Guard: the share of requests on which the candidate answers the live version's label may not fall below this; 0 turns it off.",
        minimum=0,
        maximum=1,
    ),
    Setting(
        "rollout.max_accuracy_drop",
        float,
        0.02,
        "Guard: the candidate's online accuracy (labels from feedback) may not fall more than this below the live version's; 1 turns it off.",
        minimum=0,
        maximum=1,
    ),
    Setting(
        "rollout.suites",
        bool,
        False,
        "Guard: a validation report (`monitoring.validation_report`) written during the step must pass.",
    ),
    Setting(
        "rollout.slack",
        str,
        "",
        "A Slack incoming webhook told when a rollout starts, advances, rolls back, is promoted or aborted; `${NAME}` reads the environment. Empty: none.",
    ),
    Setting(
        "rollout.webhook",
        str,
        "",
        "A URL that receives each rollout decision as JSON; `${NAME}` reads the environment. Empty: none.",
    ),
)

BUILD_SETTINGS: tuple[Setting, ...] = (
    Setting(
        "build.image",
        str,
        "",
        "The image `shipway build` tags and the Kubernetes manifests run, e.g. registry.example.com/team/intent-router:1.4. Empty: localhost/<name>:<model version>.",
    ),
    Setting(
        "build.base",
        str,
        "docker.io/library/python:3.11.11-slim-bookworm",
        "The base image of the Containerfile: Linux with python3 of this machine's minor version. Pin it by digest (name@sha256:...) for byte-for-byte rebuilds.",
    ),
    Setting(
        "build.engine",
        str,
        "auto",
        "What builds the image: auto takes the first of buildah, podman and docker that can run here.",
        choices=("auto", "buildah", "podman", "docker"),
    ),
    Setting(
        "build.artifacts",
        str,
        "include",
        "include: the artifacts folder is copied into the image; mount: it is left out and mounted at run time (on Kubernetes from `kubernetes.artifacts_claim`).",
        choices=("include", "mount"),
    ),
    Setting(
        "build.extras",
        str,
        "postgres",
        "shipway's extras installed in the image, comma-separated (postgres for the shared store; sklearn, monitoring...).",
    ),
    Setting(
        "build.requirements",
        str,
        "requirements.txt",
        "The project's own dependencies (one requirement a line); each is locked at the version installed where `shipway build` runs.",
    ),
    Setting(
        "kubernetes.out",
        str,
        "deploy/kubernetes",
        "The folder `shipway deploy --to kubernetes` writes the manifests and kustomization.yaml into.",
    ),
    Setting("kubernetes.namespace", str, "", "The namespace of every manifest. Empty: kubectl's current namespace."),
    Setting("kubernetes.replicas", int, 2, "Replicas at least (the autoscaler's minimum).", minimum=1),
    Setting("kubernetes.max_replicas", int, 10, "The autoscaler's maximum replicas.", minimum=1),
    Setting(
        "kubernetes.target_cpu_percent",
        int,
        70,
        "The autoscaler adds replicas when the average CPU use passes this share of the request.",
        minimum=1,
        maximum=100,
    ),
    Setting(
        "kubernetes.cpu",
        str,
        "1",
        "CPU request and limit of each replica (Kubernetes quantity: 1, 2, 500m); the workers are the limit rounded up.",
    ),
    Setting("kubernetes.memory", str, "1Gi", "Memory request and limit of each replica (Kubernetes quantity)."),
    Setting(
        "kubernetes.prestop_s",
        int,
        5,
        "On termination, how long a pod keeps serving before SIGTERM while the Service stops routing to it.",
        minimum=0,
    ),
    Setting(
        "kubernetes.startup_s",
        int,
        300,
        "How long a replica may take to load its model before Kubernetes restarts it.",
        minimum=5,
    ),
    Setting(
        "kubernetes.artifacts_claim",
        str,
        "",
        "When build.artifacts is mount: the PersistentVolumeClaim holding the artifacts folder, mounted read-only.",
    ),
    Setting(
        "kubernetes.objects_claim",
        str,
        "",
        "The PersistentVolumeClaim holding the artifact folder (experiments.objects), mounted read-only, so that replicas can load registered versions the image does not hold (candidates). Empty: none.",
    ),
    Setting(
        "kubernetes.rollout_timeout_s",
        int,
        600,
        "How long `shipway deploy --to kubernetes` waits for the rollout on a configured cluster.",
        minimum=1,
    ),
)
