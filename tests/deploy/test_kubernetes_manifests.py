"""`shipway deploy --to kubernetes`: the manifests, validated against the Kubernetes schemas.

No cluster can run here: the manifests are validated with `kubernetes-validate --strict` for every
supported version, rendered by `kubectl kustomize`, and the apply path is run against a kubeconfig
whose cluster does not answer.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import SERVICES, SHIPWAY

from shipway.core.artifacts import write_manifest
from shipway.core.settings import load_settings
from shipway.deploy import kubernetes
from shipway.errors import DeployError

SUPPORTED = [f"1.{minor}.0" for minor in range(30, 38)]  # docs/deploy.md names the same range
VALIDATE = Path(sys.executable).with_name("kubernetes-validate")
SUITE = """\
name: cards
input_field: text
fields:
  label: intent
cases:
  - name: card arrival
    input: "card_arrival 0.9"
    expect:
      label: card_arrival
"""


def make_project(tmp_path: Path, **toml: str) -> Path:
    """The router service with rules, an artifacts folder and a validation suite."""
    project = Path(shutil.copytree(SERVICES / "router", tmp_path / "intent_router"))
    (project / "artifacts").mkdir()
    (project / "artifacts" / "weights.json").write_text('{"w": 1}')
    write_manifest(project / "artifacts", {"version": "router-v1"})
    (project / "validation" / "more").mkdir(parents=True)
    (project / "validation" / "cards.yaml").write_text(SUITE)
    (project / "validation" / "more" / "again.yaml").write_text(SUITE.replace("cards", "again"))
    text = (project / "shipway.toml").read_text()
    text = text.replace('name = "router"', 'name = "intent_router"')
    (project / "shipway.toml").write_text(text + "".join(f"\n{extra}\n" for extra in toml.values()))
    return project


def written(project: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [*SHIPWAY, "deploy", "--to", "kubernetes", "--target", str(project), "--image", "registry.test/r:1"]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)


def no_kubeconfig_env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "HOME": str(tmp_path / "home")}
    env.pop("KUBECONFIG", None)
    return env


def load(folder: Path, file: str) -> dict[str, Any]:
    return yaml.safe_load((folder / file).read_text())


def test_manifests_pass_the_schemas_of_every_supported_version_strictly(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    done = written(project, no_kubeconfig_env(tmp_path))
    assert done.returncode == 0, done.stderr
    folder = project / "deploy" / "kubernetes"
    assert "not applied (no kubeconfig found" in done.stdout
    files = sorted(str(p) for p in folder.glob("*.yaml") if p.name != "kustomization.yaml")
    assert len(files) == 5
    for version in SUPPORTED:
        check = subprocess.run(
            [str(VALIDATE), "--strict", "-k", version, *files], capture_output=True, text=True, check=False
        )
        assert check.returncode == 0, f"Kubernetes {version}:\n{check.stdout}{check.stderr}"
        assert check.stdout.count("passed for resource") == 5, check.stdout
    # The validator does refuse what is wrong: a misspelt field in the same Deployment fails.
    bad = load(folder, "deployment.yaml")
    bad["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    refused = subprocess.run(
        [str(VALIDATE), "--strict", "-k", SUPPORTED[-1], str(tmp_path / "bad.yaml")], capture_output=True, text=True
    )
    assert refused.returncode != 0 and "readinesProbe" in refused.stdout + refused.stderr


def test_the_deployment_probes_drains_and_runs_restricted(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    settings = load_settings(project)
    manifests = kubernetes.render(settings, "registry.test/r:1")
    deployment = manifests["deployment.yaml"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "registry.test/r:1"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["ports"][0]["containerPort"] == settings["serve.port"]
    prestop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert prestop == ["sleep", str(settings["kubernetes.prestop_s"])]
    # Kubernetes counts the preStop hook inside the grace period: it must cover the hook and the drain.
    assert (
        pod["terminationGracePeriodSeconds"] > settings["kubernetes.prestop_s"] + settings["serve.graceful_timeout_s"]
    )
    assert container["resources"]["limits"] == {
        "cpu": settings["kubernetes.cpu"],
        "memory": settings["kubernetes.memory"],
    }
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    env = {e["name"]: e["valueFrom"] for e in container["env"]}
    assert env["SHIPWAY_STORE_URL"]["secretKeyRef"] == {"name": "intent-router-store", "key": "url", "optional": False}
    assert env["SHIPWAY_ADMIN_TOKEN"]["secretKeyRef"]["name"] == "intent-router-tokens"
    assert env["SHIPWAY_FEEDBACK_TOKEN"]["secretKeyRef"]["optional"] is True
    assert env["SHIPWAY_WORKERS"]["resourceFieldRef"]["resource"] == "limits.cpu"
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    hpa, pdb = manifests["hpa.yaml"]["spec"], manifests["pdb.yaml"]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (
        settings["kubernetes.replicas"],
        settings["kubernetes.max_replicas"],
    )
    assert pdb["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    assert manifests["service.yaml"]["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_the_configmap_carries_settings_rules_and_suites_at_their_place(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    manifests = kubernetes.render(load_settings(project), "registry.test/r:1")
    data = manifests["configmap.yaml"]["data"]
    assert data["shipway.toml"] == (project / "shipway.toml").read_text()
    assert data["rules.yaml"] == (project / "rules.yaml").read_text()
    assert data["validation__more__again.yaml"] == (project / "validation" / "more" / "again.yaml").read_text()
    pod = manifests["deployment.yaml"]["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["/srv/app/shipway.toml"]["subPath"] == "shipway.toml"
    assert mounts["/srv/app/rules.yaml"]["subPath"] == "rules.yaml"
    suites = next(v for v in pod["volumes"] if v["name"] == "suites")["configMap"]["items"]
    assert {"key": "validation__more__again.yaml", "path": "more/again.yaml"} in suites
    assert mounts["/srv/app/validation"]["name"] == "suites"
    # Changing the rules changes the pod template, so applying the new ConfigMap rolls the replicas.
    before = manifests["deployment.yaml"]["spec"]["template"]["metadata"]["annotations"]
    (project / "rules.yaml").write_text((project / "rules.yaml").read_text() + "\n# changed\n")
    after = kubernetes.render(load_settings(project), "registry.test/r:1")["deployment.yaml"]
    assert (
        after["spec"]["template"]["metadata"]["annotations"]["shipway.dev/config-digest"]
        != (before["shipway.dev/config-digest"])
    )
    assert before["shipway.dev/model-version"] == "router-v1"


def test_kubectl_kustomize_renders_the_folder_offline(tmp_path: Path) -> None:
    if shutil.which("kubectl") is None:
        pytest.fail("kubectl is not installed: the test machine has it (docs/deploy.md)")
    project = make_project(tmp_path, ns='[kubernetes]\nnamespace = "models"')
    assert written(project, no_kubeconfig_env(tmp_path)).returncode == 0
    out = subprocess.run(
        ["kubectl", "kustomize", str(project / "deploy" / "kubernetes")], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    resources = list(yaml.safe_load_all(out.stdout))
    kinds = sorted(r["kind"] for r in resources)
    assert kinds == ["ConfigMap", "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Service"]
    assert {r["metadata"]["namespace"] for r in resources} == {"models"}


def test_a_configured_cluster_that_does_not_answer_fails_clearly_after_writing(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    config = tmp_path / "kubeconfig"
    config.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "gone", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "c", "context": {"cluster": "gone", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    done = written(project, {**no_kubeconfig_env(tmp_path), "KUBECONFIG": str(config)})
    assert done.returncode == 1
    assert "kubectl could not reach the cluster" in done.stderr and "127.0.0.1:1" in done.stderr
    assert (project / "deploy" / "kubernetes" / "deployment.yaml").is_file()


def test_inconsistent_settings_are_refused_with_the_fix(tmp_path: Path) -> None:
    project = make_project(tmp_path, k="[kubernetes]\nreplicas = 5\nmax_replicas = 3")
    with pytest.raises(DeployError, match=r"max_replicas \(3\) is below kubernetes.replicas \(5\)"):
        kubernetes.render(load_settings(project))
    project2 = make_project(tmp_path / "two", b='[build]\nartifacts = "mount"')
    with pytest.raises(DeployError, match=r"kubernetes\.artifacts_claim is empty"):
        kubernetes.render(load_settings(project2))
    done = subprocess.run(
        [*SHIPWAY, "deploy", "--to", "kubernetes", "--target", str(project2), "artifacts"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 2 and "leave ARTIFACTS out" in done.stderr


def test_mounted_artifacts_and_objects_come_from_claims(tmp_path: Path) -> None:
    extra = '[build]\nartifacts = "mount"\n[kubernetes]\nartifacts_claim = "models"\nobjects_claim = "objects"'
    project = make_project(tmp_path, k=extra)
    pod = kubernetes.render(load_settings(project), "registry.test/r:1")["deployment.yaml"]["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["name"]: m for m in pod["containers"][0]["volumeMounts"]}
    assert volumes["artifacts"]["persistentVolumeClaim"] == {"claimName": "models", "readOnly": True}
    assert mounts["artifacts"]["mountPath"] == "/srv/app/artifacts"
    assert volumes["objects"]["persistentVolumeClaim"]["claimName"] == "objects"
    assert mounts["objects"]["mountPath"] == "/srv/app/.shipway/objects"
