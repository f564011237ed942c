"""Sigstore signatures with a cosign key, as skopeo --sign-by-sigstore-private-key makes them.

Debian 12's skopeo (1.9) is built with sigstore disabled, so image/publish.py signs here: a cosign key file (an ``ENCRYPTED SIGSTORE PRIVATE KEY`` or ``ENCRYPTED COSIGN PRIVATE KEY``
PEM: scrypt, then NaCl secretbox, around a PKCS #8 ECDSA key), a payload naming one tag and one
manifest digest, an ECDSA-SHA256 signature. Needs ``cryptography`` and ``PyNaCl``.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from nacl import secret

PEM_TYPES = ("ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY")
SCRYPT_MAXMEM = 256 * 1024 * 1024


def load_key(path: Path, passphrase_file: Path | None) -> ec.EllipticCurvePrivateKey:
    text = path.read_text()
    kind = next((k for k in PEM_TYPES if f"-----BEGIN {k}-----" in text), None)
    if kind is None:
        raise ValueError(f"{path} is not a cosign private key (no {PEM_TYPES[0]} block)")
    body = text.split(f"-----BEGIN {kind}-----")[1].split(f"-----END {kind}-----")[0]
    sealed = json.loads(base64.b64decode("".join(body.split())))
    kdf, cipher = sealed["kdf"], sealed["cipher"]
    if (kdf["name"], cipher["name"]) != ("scrypt", "nacl/secretbox"):
        raise ValueError(f"{path}: unsupported encryption {kdf['name']}/{cipher['name']}")
    passphrase = passphrase_file.read_bytes().rstrip(b"\n") if passphrase_file else b""
    params = kdf["params"]
    secret_key = hashlib.scrypt(
        passphrase,
        salt=base64.b64decode(kdf["salt"]),
        n=params["N"],
        r=params["r"],
        p=params["p"],
        maxmem=SCRYPT_MAXMEM,
        dklen=32,
    )
    der = secret.SecretBox(secret_key).decrypt(
        base64.b64decode(sealed["ciphertext"]), base64.b64decode(cipher["nonce"])
    )
    key = serialization.load_der_private_key(der, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TypeError(f"{path}: an ECDSA key is needed, not {type(key).__name__}")
    return key


def payload(identity: str, digest: str) -> bytes:
    """What is signed: this manifest digest, under this name (repository:tag)."""
    return json.dumps(
        {
            "critical": {
                "identity": {"docker-reference": identity},
                "image": {"docker-manifest-digest": digest},
                "type": "cosign container image signature",
            },
            "optional": None,
        },
        separators=(",", ":"),
    ).encode()


def sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> str:
    return base64.b64encode(key.sign(data, ec.ECDSA(hashes.SHA256()))).decode()
