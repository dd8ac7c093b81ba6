"""Signatures of artifact manifests: a shared secret (HMAC-SHA256) or a key pair (Ed25519).

A shared secret must sit wherever models are served, so whoever reads it there can also sign.
With a key pair, training holds the private key and serving holds only public keys, which
verify and cannot sign. Keys come from the environment, never from the project's files:

- SHIPWAY_MANIFEST_KEY (and SHIPWAY_MANIFEST_KEY_PREVIOUS while it rotates): the shared secret;
- SHIPWAY_MANIFEST_PRIVATE_KEY: an Ed25519 private key (PEM, PKCS#8), or the path of its file;
- SHIPWAY_MANIFEST_PUBLIC_KEYS: Ed25519 public keys (PEM, several in a row while they rotate),
  or the paths of their files separated by the OS path separator.

Writing signs with the private key when one is set, else with the shared secret. Once any key
is set, every load requires a signature that one of them verifies; the public key of a
configured private key verifies too, so the machine that trains can serve what it signed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipway.errors import ArtifactError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "ED25519",
    "HMAC",
    "KEY_ENV",
    "PREVIOUS_KEY_ENV",
    "PRIVATE_KEY_ENV",
    "PUBLIC_KEYS_ENV",
    "signature_of",
    "verify_signature",
]

KEY_ENV = "SHIPWAY_MANIFEST_KEY"
PREVIOUS_KEY_ENV = "SHIPWAY_MANIFEST_KEY_PREVIOUS"
PRIVATE_KEY_ENV = "SHIPWAY_MANIFEST_PRIVATE_KEY"
PUBLIC_KEYS_ENV = "SHIPWAY_MANIFEST_PUBLIC_KEYS"
HMAC = "hmac-sha256"
ED25519 = "ed25519"
_NEW_PAIR = (
    "make a pair with `openssl genpkey -algorithm ed25519 -out manifest-key.pem` and "
    "`openssl pkey -in manifest-key.pem -pubout -out manifest-key.pub`"
)
_PEM = re.compile(rb"-----BEGIN ([A-Z ]+)-----.+?-----END \1-----", re.S)


def signature_of(raw: bytes, environ: Mapping[str, str]) -> dict[str, str] | None:
    """The signature of the manifest bytes `raw` with the configured signing key, as
    manifest.sig holds it; None when no signing key is set."""
    private = _private_key(environ)
    if private is not None:
        signature = base64.b64encode(private.sign(raw)).decode()
        return {"algorithm": ED25519, "key_id": _public_id(private.public_key()), "signature": signature}
    secrets = _secrets(environ)
    if secrets:
        key_id, key = secrets[0]
        return {"algorithm": HMAC, "key_id": key_id, "signature": _hmac(key, raw)}
    return None


def verify_signature(manifest: Path, raw: bytes, signature_file: Path, environ: Mapping[str, str]) -> None:
    """Nothing when no key is set or a configured key verifies `signature_file` over `raw`, the
    bytes of `manifest`; else ArtifactError naming what is missing or does not match, and what to do."""
    secrets = _secrets(environ)
    publics = _public_keys(environ)
    if not secrets and not publics:
        return  # no key configured: digests alone
    sign = f"sign it with `shipway manifest {manifest.parent}` where the model was trained, with the signing key set"
    if not signature_file.is_file():
        raise ArtifactError(
            f"{manifest} is not signed ({signature_file.name} is missing) and a manifest key is set "
            f"({_configured(secrets, publics)}); {sign}."
        )
    try:
        body = json.loads(signature_file.read_text())
        algorithm, signature = body["algorithm"], str(body["signature"])
    except (ValueError, KeyError, TypeError):
        raise ArtifactError(f"{signature_file} is not a shipway manifest signature; {sign}.") from None
    if algorithm == HMAC and secrets:
        if any(hmac.compare_digest(signature, _hmac(key, raw)) for _, key in secrets):
            return
        known = ", ".join(key_id for key_id, _ in secrets)
    elif algorithm == ED25519 and publics:
        if any(_ed25519_verifies(key, signature, raw) for _, key in publics):
            return
        known = ", ".join(key_id for key_id, _ in publics)
    else:
        raise ArtifactError(
            f"{signature_file} is a {algorithm!r} signature, and this machine verifies only "
            f"{_configured(secrets, publics)}. Set the key that signed it, or {sign}."
        )
    raise ArtifactError(
        f"{manifest} does not match its signature in {signature_file.name} under the configured keys (key ids "
        f"{known}; the signature names key {body.get('key_id')!r}): the manifest was changed after it was signed, "
        f"or signed with another key. Nothing in the folder is loaded. Train again, or {sign}."
    )


def _configured(secrets: list[tuple[str, bytes]], publics: list[tuple[str, Any]]) -> str:
    kinds = ([f"{HMAC} by {KEY_ENV}"] if secrets else []) + ([f"{ED25519} by {PUBLIC_KEYS_ENV}"] if publics else [])
    return " and ".join(kinds)


def _secrets(environ: Mapping[str, str]) -> list[tuple[str, bytes]]:
    """(key id, key) of the shared secrets: the current one first."""
    keys = [environ.get(KEY_ENV, ""), environ.get(PREVIOUS_KEY_ENV, "")]
    return [(hashlib.sha256(k.encode()).hexdigest()[:12], k.encode()) for k in keys if k]


def _hmac(key: bytes, raw: bytes) -> str:
    return hmac.new(key, raw, hashlib.sha256).hexdigest()


def _pem_blocks(variable: str, value: str) -> list[bytes]:
    """The PEM blocks of a variable that holds PEM text or paths of PEM files."""
    if "-----BEGIN" in value:
        texts = [value.encode()]
    else:
        texts = []
        for part in (p.strip() for p in value.split(os.pathsep)):
            if not part:
                continue
            try:
                texts.append(Path(part).expanduser().read_bytes())
            except OSError as err:
                raise ArtifactError(
                    f"{variable} names {part}, which cannot be read ({err.strerror}); give the path of a PEM "
                    f"key file, or the PEM text itself."
                ) from None
    blocks = [m.group(0) for text in texts for m in _PEM.finditer(text)]
    if not blocks:
        raise ArtifactError(f"{variable} holds no PEM key (-----BEGIN ...-----); {_NEW_PAIR}.")
    return blocks


def _private_key(environ: Mapping[str, str]) -> Ed25519PrivateKey | None:
    value = environ.get(PRIVATE_KEY_ENV, "").strip()
    if not value:
        return None
    ed25519, serialization = _crypto(PRIVATE_KEY_ENV)
    blocks = _pem_blocks(PRIVATE_KEY_ENV, value)
    try:
        key = serialization.load_pem_private_key(blocks[0], password=None)
    except (ValueError, TypeError) as err:
        raise ArtifactError(f"{PRIVATE_KEY_ENV} is not a usable private key ({err}); {_NEW_PAIR}.") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise ArtifactError(f"{PRIVATE_KEY_ENV} holds a {type(key).__name__}; shipway signs with Ed25519: {_NEW_PAIR}.")
    return key


def _public_keys(environ: Mapping[str, str]) -> list[tuple[str, Ed25519PublicKey]]:
    """(key id, key) of every configured public key, the private key's own included."""
    keys = []
    private = _private_key(environ)
    if private is not None:
        keys.append(private.public_key())
    value = environ.get(PUBLIC_KEYS_ENV, "").strip()
    if value:
        ed25519, serialization = _crypto(PUBLIC_KEYS_ENV)
        for block in _pem_blocks(PUBLIC_KEYS_ENV, value):
            try:
                key = serialization.load_pem_public_key(block)
            except ValueError as err:
                raise ArtifactError(
                    f"{PUBLIC_KEYS_ENV} holds a key that cannot be read ({err}); {_NEW_PAIR}."
                ) from None
            if not isinstance(key, ed25519.Ed25519PublicKey):
                raise ArtifactError(
                    f"{PUBLIC_KEYS_ENV} holds a {type(key).__name__}; shipway verifies Ed25519: {_NEW_PAIR}."
                )
            keys.append(key)
    return [(_public_id(k), k) for k in keys]


def _public_id(key: Ed25519PublicKey) -> str:
    from cryptography.hazmat.primitives import serialization

    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:12]


def _ed25519_verifies(key: Ed25519PublicKey, signature: str, raw: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature

    try:
        key.verify(base64.b64decode(signature, validate=True), raw)
    except (InvalidSignature, ValueError):
        return False
    return True


def _crypto(variable: str) -> tuple[Any, Any]:
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        raise ArtifactError(
            f"{variable} is set, and Ed25519 signatures need the cryptography package: pip install 'shipway[signing]'."
        ) from None
    return ed25519, serialization
