"""`shipway deploy --to kubernetes`: plain manifests for the image `shipway build` made.

    deployment.yaml  the replicas: probes on /ready, /health; preStop drain; restricted security
    service.yaml     ClusterIP in front of them
    hpa.yaml         HorizontalPodAutoscaler on CPU (autoscaling/v2)
    pdb.yaml         PodDisruptionBudget: one replica down at a time (policy/v1)
    configmap.yaml   shipway.toml, the rules file, the alert rules and the validation suites
    kustomization.yaml   `kubectl apply -k` or `kubectl kustomize`; plain `kubectl apply -f` works too

Secrets are never written: the Deployment reads the PostgreSQL store URL from the Secret
`<name>-store` (key `url`, required) and the tokens from `<name>-tokens` (keys `admin-token`,
`feedback-token`, `manifest-key`, `manifest-public-keys`, each optional). Only stable APIs are
used, so the manifests validate against the schemas of Kubernetes 1.30 to 1.37 (the tests check each).
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from shipway.core.service import read_ids
from shipway.core.settings import Settings
from shipway.deploy.container import APP_DIR, UID, default_image, dns_name
from shipway.errors import DeployError

__all__ = ["CONFIG_LIMIT", "Manifests", "apply", "dns_name", "kubeconfig", "project_files", "render", "write"]

CONFIG_LIMIT = 1_000_000  # a ConfigMap holds at most 1 MiB; keep a margin for its metadata
Manifests = dict[str, dict[str, Any]]  # file name -> one resource


def project_files(settings: Settings) -> dict[str, str]:
    """The project's configuration that the ConfigMap carries: relative path -> text."""
    root = settings.root
    files: dict[str, str] = {}
    candidates = [root / "shipway.toml"]
    if settings["rules.file"]:
        candidates.append(settings.path("rules.file"))
    candidates.append(settings.path("monitoring.alerts_file"))
    suites = settings.path("validation.suites")
    if suites.is_dir():
        candidates += sorted(p for p in suites.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml"))
    elif suites.is_file():
        candidates.append(suites)
    for file in candidates:
        if not file.is_file():
            continue
        if not file.resolve().is_relative_to(root):
            raise DeployError(
                f"{file} is outside the project {root}; the ConfigMap mounts files at their place in the "
                "project. Move it into the project folder and point the setting at it."
            )
        files[file.resolve().relative_to(root).as_posix()] = file.read_text()
    size = sum(len(text.encode()) for text in files.values())
    if size > CONFIG_LIMIT:
        raise DeployError(
            f"the project's settings, rules and suites hold {size} bytes; a ConfigMap holds at most 1 MiB. "
            "Keep large suites in the image (they are there already) and shorten the ones mounted."
        )
    return files


def render(settings: Settings, image: str | None = None) -> Manifests:
    """Every manifest, by file name."""
    name = dns_name(settings["name"])
    image = image or default_image(settings)
    if settings["kubernetes.max_replicas"] < settings["kubernetes.replicas"]:
        raise DeployError(
            f"kubernetes.max_replicas ({settings['kubernetes.max_replicas']}) is below kubernetes.replicas "
            f"({settings['kubernetes.replicas']}); raise max_replicas or lower replicas."
        )
    if settings["build.artifacts"] == "mount" and not settings["kubernetes.artifacts_claim"]:
        raise DeployError(
            "build.artifacts is 'mount' but kubernetes.artifacts_claim is empty: name the PersistentVolumeClaim "
            "that holds the artifacts folder, or set build.artifacts = 'include'."
        )
    files = project_files(settings)
    digest = hashlib.sha256(repr(sorted(files.items())).encode()).hexdigest()[:16]
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "shipway"}
    meta = {"name": name, "labels": labels}
    if settings["kubernetes.namespace"]:
        meta["namespace"] = settings["kubernetes.namespace"]
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {**meta, "name": f"{name}-project"}}
    config["data"] = {_key(path): text for path, text in files.items()}
    return {
        "deployment.yaml": _deployment(settings, meta, labels, image, files, digest),
        "service.yaml": {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta,
            "spec": {"selector": labels, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
        },
        "hpa.yaml": _autoscaler(settings, meta),
        "pdb.yaml": {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": meta,
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": labels}},
        },
        "configmap.yaml": config,
    }


def write(manifests: Manifests, folder: Path, namespace: str = "") -> list[Path]:
    """Write each manifest and a kustomization.yaml listing them; the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    head = "# Written by `shipway deploy --to kubernetes` from shipway.toml; run it again rather than edit.\n"
    written = []
    for file, resource in manifests.items():
        (folder / file).write_text(head + yaml.safe_dump(resource, sort_keys=False, width=120))
        written.append(folder / file)
    kustomization: dict[str, Any] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": list(manifests),
    }
    if namespace:
        kustomization["namespace"] = namespace
    (folder / "kustomization.yaml").write_text(head + yaml.safe_dump(kustomization, sort_keys=False))
    return [*written, folder / "kustomization.yaml"]


def _key(path: str) -> str:
    """A ConfigMap key for a relative path (keys take letters, digits, '-', '_' and '.')."""
    return path.replace("/", "__")


def _deployment(
    settings: Settings, meta: dict[str, Any], labels: dict[str, str], image: str, files: dict[str, str], digest: str
) -> dict[str, Any]:
    name = meta["name"]
    port = settings["serve.port"]
    prestop = settings["kubernetes.prestop_s"]
    drain = math.ceil(settings["serve.graceful_timeout_s"])
    resources = {"cpu": settings["kubernetes.cpu"], "memory": settings["kubernetes.memory"]}
    suites_dir = settings["validation.suites"].strip("/") if settings.path("validation.suites").is_dir() else None
    mounts: list[dict[str, Any]] = [
        {"name": "state", "mountPath": f"{APP_DIR}/.shipway"},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    suite_items = []
    for path in files:
        if suites_dir and path.startswith(suites_dir + "/"):
            suite_items.append({"key": _key(path), "path": path[len(suites_dir) + 1 :]})
        else:
            mounts.append({"name": "project", "mountPath": f"{APP_DIR}/{path}", "subPath": _key(path)})
    volumes: list[dict[str, Any]] = [
        {"name": "state", "emptyDir": {}},
        {"name": "tmp", "emptyDir": {}},
        {"name": "project", "configMap": {"name": f"{name}-project"}},
    ]
    if suite_items:
        volumes.append({"name": "suites", "configMap": {"name": f"{name}-project", "items": suite_items}})
        mounts.append({"name": "suites", "mountPath": f"{APP_DIR}/{suites_dir}", "readOnly": True})
    if settings["build.artifacts"] == "mount":
        claim = settings["kubernetes.artifacts_claim"]
        volumes.append({"name": "artifacts", "persistentVolumeClaim": {"claimName": claim, "readOnly": True}})
        mounts.append({"name": "artifacts", "mountPath": f"{APP_DIR}/{settings['artifacts']}", "readOnly": True})
    if settings["kubernetes.objects_claim"]:
        claim = settings["kubernetes.objects_claim"]
        volumes.append({"name": "objects", "persistentVolumeClaim": {"claimName": claim, "readOnly": True}})
        objects = settings.path("experiments.objects")
        if not objects.is_relative_to(settings.root):
            raise DeployError(
                f"experiments.objects ({objects}) is outside the project, so the replicas cannot mount it at the "
                "same place. Set it to a folder inside the project (the default .shipway/objects) for Kubernetes."
            )
        mounts.append(
            {
                "name": "objects",
                "mountPath": f"{APP_DIR}/{objects.relative_to(settings.root).as_posix()}",
                "readOnly": True,
            }
        )
    env = [
        {
            "name": "SHIPWAY_WORKERS",  # one worker per CPU of the limit, rounded up (shipway.deploy.start)
            "valueFrom": {"resourceFieldRef": {"containerName": "service", "resource": "limits.cpu", "divisor": "1"}},
        },
        _secret_env("SHIPWAY_STORE_URL", f"{name}-store", "url", optional=False),
        _secret_env("SHIPWAY_ADMIN_TOKEN", f"{name}-tokens", "admin-token"),
        _secret_env("SHIPWAY_FEEDBACK_TOKEN", f"{name}-tokens", "feedback-token"),
        _secret_env("SHIPWAY_MANIFEST_KEY", f"{name}-tokens", "manifest-key"),
        _secret_env("SHIPWAY_MANIFEST_PUBLIC_KEYS", f"{name}-tokens", "manifest-public-keys"),
    ]
    probe = {"httpGet": {"path": "/health", "port": "http"}}
    container = {
        "name": "service",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": port}],
        "env": env,
        "resources": {"requests": resources, "limits": resources},
        "startupProbe": {
            **probe,
            "periodSeconds": 5,
            "failureThreshold": math.ceil(settings["kubernetes.startup_s"] / 5),
        },
        "livenessProbe": {**probe, "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 3},
        "readinessProbe": {
            "httpGet": {"path": "/ready", "port": "http"},
            "periodSeconds": 5,
            "timeoutSeconds": 3,
            "failureThreshold": 2,
        },
        # Endpoints are removed while the pod still serves; SIGTERM comes after, and drains.
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(prestop)]}}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": mounts,
    }
    ids = read_ids(settings.path("artifacts"))
    annotations = {"shipway.dev/config-digest": digest}  # a new ConfigMap rolls the pods
    if ids.get("model_version"):
        annotations["shipway.dev/model-version"] = str(ids["model_version"])
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": settings["kubernetes.replicas"],
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": labels},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": labels, "annotations": annotations},
                "spec": {
                    # preStop, then the server's drain, then a margin: nothing is killed mid-request.
                    "terminationGracePeriodSeconds": prestop + drain + 10,
                    "automountServiceAccountToken": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": UID,
                        "runAsGroup": UID,
                        "fsGroup": UID,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }


def _autoscaler(settings: Settings, meta: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": meta,
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": meta["name"]},
            "minReplicas": settings["kubernetes.replicas"],
            "maxReplicas": settings["kubernetes.max_replicas"],
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": settings["kubernetes.target_cpu_percent"],
                        },
                    },
                }
            ],
        },
    }


def _secret_env(variable: str, secret: str, key: str, optional: bool = True) -> dict[str, Any]:
    return {"name": variable, "valueFrom": {"secretKeyRef": {"name": secret, "key": key, "optional": optional}}}


def kubeconfig() -> list[Path]:
    """The kubeconfig files kubectl would read ($KUBECONFIG, else ~/.kube/config) that exist."""
    listed = os.environ.get("KUBECONFIG", "")
    files = [Path(p) for p in listed.split(os.pathsep) if p] if listed else [Path.home() / ".kube" / "config"]
    return [f for f in files if f.is_file()]


def apply(folder: Path, name: str, namespace: str, timeout_s: int) -> str:
    """`kubectl apply -k FOLDER`, then wait for the Deployment's rollout; kubectl's last words."""
    if shutil.which("kubectl") is None:
        raise DeployError("kubectl is not installed, so the manifests cannot be applied. Install it, or apply "
                          f"{folder} from a machine that has it: kubectl apply -k {folder}")  # fmt: skip
    ns = ["--namespace", namespace] if namespace else []
    store = _kubectl(["get", "secret", f"{name}-store", *ns, "-o", "name"], "look for the store's Secret")
    if store.returncode != 0 and "NotFound" not in store.stderr:
        raise DeployError(
            f"kubectl could not reach the cluster of the kubeconfig ({store.stderr.strip()}). Check "
            f"`kubectl cluster-info`, or write the manifests only: shipway deploy --to kubernetes --no-apply"
        )
    if store.returncode != 0:
        raise DeployError(
            f"the Secret {name}-store, which holds the PostgreSQL store URL, is not in the cluster "
            f"({store.stderr.strip()}). Create it, then deploy again:\n"
            f"  kubectl create secret generic {name}-store {' '.join(ns)} --from-literal=url=postgresql://USER:PASSWORD@HOST/DB"
        )
    applied = _kubectl(["apply", "-k", str(folder)], "apply the manifests")
    if applied.returncode != 0:
        raise DeployError(f"kubectl apply -k {folder} failed: {applied.stderr.strip()}")
    rollout = ["rollout", "status", f"deployment/{name}", *ns, f"--timeout={timeout_s}s"]
    waited = _kubectl(rollout, "wait for the rollout")
    if waited.returncode != 0:
        raise DeployError(
            f"the rollout of deployment/{name} did not finish within {timeout_s} s: {waited.stderr.strip()}. "
            f"`kubectl describe deployment/{name}` and the pods' events say why; "
            f"`kubectl rollout undo deployment/{name}` goes back."
        )
    return (applied.stdout + waited.stdout).strip()


def _kubectl(args: list[str], what: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["kubectl", *args], capture_output=True, text=True, check=False)
    except OSError as err:
        raise DeployError(f"kubectl could not run to {what}: {err}") from err
