"""Artifacts are code: every load verifies the folder against its manifest before load() runs,
and deployable folders come from under `deploy.root` only."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
from pathlib import Path

import pytest
from conftest import SHIPWAY, start_server

from shipway.core.artifacts import KEY_ENV, PREVIOUS_KEY_ENV, SIGNATURE, deployable, verify_artifacts, write_manifest
from shipway.core.service import Service, load_project
from shipway.core.settings import load_settings
from shipway.core.signing import PRIVATE_KEY_ENV, PUBLIC_KEYS_ENV
from shipway.errors import ArtifactError, LoadError
from shipway.validation.service_check import check_project

SERVICE = """\
import pickle
from pathlib import Path

from pydantic import BaseModel


class Item(BaseModel):
    x: float


def load(artifacts: Path) -> float:
    with (artifacts / "model.pkl").open("rb") as fh:
        return pickle.load(fh)


def predict(scale: float, item: Item) -> float:
    return item.x * scale


example = Item(x=1.0)
"""


class Payload:
    """A model file that runs code when unpickled, then hands back the real model (3.0)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return eval, (f"(open({str(self.marker)!r}, 'w').write('ran'), 3.0)[1]",)


def project(tmp_path: Path) -> Path:
    folder = tmp_path / "svc"
    (folder / "artifacts").mkdir(parents=True)
    (folder / "service.py").write_text(SERVICE)
    (folder / "artifacts" / "model.pkl").write_bytes(pickle.dumps(3.0))
    write_manifest(folder / "artifacts", {"version": "v1", "run_id": "r1"})
    return folder


def tamper(folder: Path) -> Path:
    """Replace the model by a pickle that writes a marker file; the manifest is left as it was."""
    marker = folder.parent / "pwned"
    (folder / "artifacts" / "model.pkl").write_bytes(pickle.dumps(Payload(marker)))
    return marker


def setup(folder: Path) -> float:
    service, settings = load_project(folder)
    return float(service.setup(settings.path("artifacts")).run({"x": 2.0}))


def test_a_verified_folder_loads(tmp_path: Path) -> None:
    assert setup(project(tmp_path)) == 6.0


def test_a_replaced_model_file_is_refused_before_it_is_unpickled(tmp_path: Path) -> None:
    folder = project(tmp_path)
    marker = tamper(folder)
    with pytest.raises(ArtifactError, match=r"artifacts changed: model\.pkl in .* is not the file manifest\.json"):
        setup(folder)
    assert not marker.exists()


def test_every_command_refuses_a_replaced_model(tmp_path: Path) -> None:
    folder = project(tmp_path)
    marker = tamper(folder)
    predict = subprocess.run([*SHIPWAY, "predict", str(folder), '{"x": 1}'], capture_output=True, text=True)
    assert predict.returncode == 2 and "artifacts changed: model.pkl" in predict.stderr, predict.stderr
    report = check_project(folder)
    assert not report.ok and "artifacts changed: model.pkl" in report.render()
    server = start_server(folder, tmp_path, wait=False)
    assert server.proc.wait(60) != 0
    assert "artifacts changed: model.pkl" in server.log
    assert not marker.exists()


def test_files_the_manifest_does_not_list_are_refused(tmp_path: Path) -> None:
    folder = project(tmp_path)
    (folder / "artifacts" / "extra.pkl").write_bytes(pickle.dumps(1.0))
    with pytest.raises(ArtifactError, match=r"holds extra\.pkl, which manifest\.json does not list"):
        setup(folder)
    (folder / "artifacts" / "extra.pkl").unlink()
    (folder / "artifacts" / "model.pkl").unlink()
    with pytest.raises(ArtifactError, match=r"manifest\.json lists model\.pkl, which is not in"):
        setup(folder)


def test_model_files_without_a_manifest_are_refused_with_the_command_that_writes_one(tmp_path: Path) -> None:
    folder = project(tmp_path)
    (folder / "artifacts" / "manifest.json").unlink()
    with pytest.raises(ArtifactError, match=r"holds model\.pkl but no manifest\.json.*shipway manifest"):
        setup(folder)
    written = subprocess.run([*SHIPWAY, "manifest", str(folder / "artifacts")], capture_output=True, text=True)
    assert written.returncode == 0, written.stderr
    assert setup(folder) == 6.0


def test_a_service_without_artifacts_needs_no_manifest(tmp_path: Path) -> None:
    assert verify_artifacts(tmp_path / "absent") is None
    (tmp_path / "empty").mkdir()
    assert verify_artifacts(tmp_path / "empty") is None
    assert Service(lambda x: x).setup(tmp_path / "absent").run(1) == 1


@pytest.mark.parametrize(
    ("files", "says"),
    [
        (["model.pkl"], "must map every artifact file to its sha256"),
        ({"../svc/service.py": "0" * 64}, "file names must be paths inside the artifacts folder"),
        ({"model.pkl": "abc"}, "which is not 64 hex digits"),
    ],
)
def test_a_malformed_manifest_is_refused(tmp_path: Path, files: object, says: str) -> None:
    folder = project(tmp_path)
    (folder / "artifacts" / "manifest.json").write_text(json.dumps({"version": "v1", "files": files}))
    with pytest.raises(ArtifactError, match=says):
        verify_artifacts(folder / "artifacts")


def test_a_signing_key_requires_a_signed_manifest(tmp_path: Path) -> None:
    folder = project(tmp_path) / "artifacts"
    key = {KEY_ENV: "k-new"}
    with pytest.raises(ArtifactError, match=r"is not signed \(manifest\.sig is missing\)"):
        verify_artifacts(folder, key)
    write_manifest(folder, environ=key)
    assert verify_artifacts(folder, key) is not None
    with pytest.raises(ArtifactError, match="does not match its signature"):
        verify_artifacts(folder, {KEY_ENV: "k-other"})
    # Rotation: a manifest signed with the old key loads while the new one is rolled out.
    assert verify_artifacts(folder, {KEY_ENV: "k-newer", PREVIOUS_KEY_ENV: "k-new"}) is not None
    # A manifest edited after signing (say, to bless a replaced model) is refused.
    manifest = json.loads((folder / "manifest.json").read_text())
    marker = tamper(folder.parent)
    manifest["files"]["model.pkl"] = write_manifest(folder, environ={})["files"]["model.pkl"]
    assert not (folder / SIGNATURE).exists()  # an unkeyed rewrite drops the stale signature
    (folder / SIGNATURE).write_text(json.dumps({"algorithm": "hmac-sha256", "signature": "0" * 64}))
    with pytest.raises(ArtifactError, match="does not match its signature"):
        verify_artifacts(folder, key)
    assert not marker.exists()


def _key_pair(folder: Path, name: str) -> tuple[Path, Path]:
    """An Ed25519 pair made by openssl, as docs/security.md says: (private key file, public key file)."""
    private, public = folder / f"{name}.pem", folder / f"{name}.pub"
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(private)], check=True)
    subprocess.run(["openssl", "pkey", "-in", str(private), "-pubout", "-out", str(public)], check=True)
    return private, public


def test_a_key_pair_signs_where_models_are_trained_and_public_keys_verify_where_they_are_served(
    tmp_path: Path,
) -> None:
    pytest.importorskip("cryptography", reason="needs shipway[signing]")
    folder = project(tmp_path) / "artifacts"
    old_private, old_public = _key_pair(tmp_path, "old")
    private, public = _key_pair(tmp_path, "new")
    serving = {PUBLIC_KEYS_ENV: str(public)}
    with pytest.raises(ArtifactError, match=r"is not signed \(manifest\.sig is missing\)"):
        verify_artifacts(folder, serving)
    write_manifest(folder, environ={PRIVATE_KEY_ENV: str(private)})
    assert json.loads((folder / SIGNATURE).read_text())["algorithm"] == "ed25519"
    assert verify_artifacts(folder, serving) is not None
    # The public key as PEM text (a Kubernetes Secret's value) verifies as well as its file.
    assert verify_artifacts(folder, {PUBLIC_KEYS_ENV: public.read_text()}) is not None
    # The machine that trains holds no public key setting: the private key's own verifies.
    assert verify_artifacts(folder, {PRIVATE_KEY_ENV: str(private)}) is not None
    with pytest.raises(ArtifactError, match="does not match its signature"):
        verify_artifacts(folder, {PUBLIC_KEYS_ENV: str(old_public)})
    # Rotation: both public keys listed, so folders signed by either load.
    both = {PUBLIC_KEYS_ENV: os.pathsep.join([str(old_public), str(public)])}
    assert verify_artifacts(folder, both) is not None
    write_manifest(folder, environ={PRIVATE_KEY_ENV: str(old_private)})
    assert verify_artifacts(folder, both) is not None
    # A manifest edited after signing is refused, and so is an HMAC signature where only public keys verify.
    (folder / "manifest.json").write_text((folder / "manifest.json").read_text().replace("v1", "v2"))
    with pytest.raises(ArtifactError, match="does not match its signature"):
        verify_artifacts(folder, both)
    write_manifest(folder, environ={KEY_ENV: "a-secret"})
    with pytest.raises(ArtifactError, match="'hmac-sha256' signature, and this machine verifies only ed25519"):
        verify_artifacts(folder, both)


@pytest.mark.parametrize(
    ("environ", "says"),
    [
        ({PUBLIC_KEYS_ENV: "/nonexistent/key.pub"}, r"names /nonexistent/key.pub, which cannot be read"),
        ({PUBLIC_KEYS_ENV: "not a key"}, r"cannot be read|holds no PEM key"),
        ({PRIVATE_KEY_ENV: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"}, "not a usable private key"),
    ],
)
def test_a_bad_key_setting_is_named_with_how_to_make_a_pair(tmp_path: Path, environ: dict[str, str], says: str) -> None:
    pytest.importorskip("cryptography", reason="needs shipway[signing]")
    folder = project(tmp_path) / "artifacts"
    with pytest.raises(ArtifactError, match=says):
        write_manifest(folder, environ=environ) if PRIVATE_KEY_ENV in environ else verify_artifacts(folder, environ)


def test_an_rsa_key_is_refused_for_ed25519(tmp_path: Path) -> None:
    pytest.importorskip("cryptography", reason="needs shipway[signing]")
    rsa = tmp_path / "rsa.pem"
    subprocess.run(
        ["openssl", "genpkey", "-algorithm", "rsa", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(rsa)], check=True
    )
    with pytest.raises(ArtifactError, match="shipway signs with Ed25519: make a pair with `openssl genpkey"):
        write_manifest(project(tmp_path) / "artifacts", environ={PRIVATE_KEY_ENV: str(rsa)})


def test_a_key_in_the_environment_is_used_by_every_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = project(tmp_path)
    monkeypatch.setenv(KEY_ENV, "k1")
    with pytest.raises(LoadError, match="is not signed"):
        setup(folder)
    write_manifest(folder / "artifacts")
    assert setup(folder) == 6.0


def test_deployable_folders_lie_under_deploy_root(tmp_path: Path) -> None:
    folder = project(tmp_path)
    (folder / "models" / "v2").mkdir(parents=True)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    settings = load_settings(folder)
    assert deployable("artifacts", settings) == (folder / "artifacts").resolve()
    assert deployable(str(folder / "models" / "v2"), settings) == (folder / "models" / "v2").resolve()
    for given in (str(outside), "../elsewhere", "models/../../elsewhere", "/etc"):
        with pytest.raises(ArtifactError, match=r"outside .* \(the `deploy.root` setting\)"):
            deployable(given, settings)
    os.symlink(outside, folder / "models" / "link")
    with pytest.raises(ArtifactError, match="resolves through a symbolic link to"):
        deployable("models/link", settings)
    narrow = load_settings(folder, {"deploy.root": "models"})
    with pytest.raises(ArtifactError, match="outside"):
        deployable("artifacts", narrow)
    assert deployable("models/v2", narrow) == (folder / "models" / "v2").resolve()


def test_manifest_verify_command(tmp_path: Path) -> None:
    folder = project(tmp_path)
    ok = subprocess.run([*SHIPWAY, "manifest", "--verify", str(folder / "artifacts")], capture_output=True, text=True)
    assert ok.returncode == 0 and "1 file match manifest.json" in ok.stdout
    tamper(folder)
    bad = subprocess.run([*SHIPWAY, "manifest", "--verify", str(folder / "artifacts")], capture_output=True, text=True)
    assert bad.returncode == 2 and "artifacts changed: model.pkl" in bad.stderr


def test_files_in_subfolders_and_empty_files_are_listed(tmp_path: Path) -> None:
    folder = project(tmp_path) / "artifacts"
    (folder / "tokenizer").mkdir()
    (folder / "tokenizer" / "vocab.txt").write_text("a\nb\n")
    (folder / "empty.txt").write_bytes(b"")
    manifest = write_manifest(folder)
    assert set(manifest["files"]) == {"model.pkl", "tokenizer/vocab.txt", "empty.txt"}
    assert manifest["version"] == "v1"  # the fields already there are kept
    assert verify_artifacts(folder) == manifest
    (folder / "tokenizer" / "vocab.txt").write_text("a\nc\n")
    with pytest.raises(ArtifactError, match=r"artifacts changed: tokenizer/vocab\.txt"):
        verify_artifacts(folder)
