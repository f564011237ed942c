"""The release as a user meets it: `image/build.py publish` to a real registry, then pulled,
verified and run as a consumer would.

A Debian `docker-registry` (the CNCF distribution registry) serves on 127.0.0.1; the image is the
one the session's `engine` fixture built (its OCI archive, reused: no second build), signed with a
throw-away GPG key. linux/amd64 only, unless DJANGO_ENTRYPOINT_TEST_ARM64=1 (then both).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from nacl import secret

from tests import images
from tests.cli import ROOT
from tests.images import Engine
from tests.services import free_port, http_server

pytestmark = pytest.mark.slow

TAG0 = f"{images.version()}-py{images.PYTHON}-django{images.DJANGO}"
SBOM_TYPE = "application/vnd.cyclonedx+json"
PROVENANCE_TYPE = "application/vnd.in-toto+json"
ACCEPT = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json"


def run(*cmd: str, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    proc = subprocess.run(
        list(cmd), env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@dataclass
class Registry:
    """A distribution registry on a free loopback port, its signatures in a lookaside folder."""

    host: str
    sigstore: Path
    registries_d: Path

    def get(self, path: str) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(
            f"http://{self.host}/v2/{path}", headers={"Accept": ACCEPT}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def json(self, path: str) -> Any:
        status, _, body = self.get(path)
        assert status == 200, (path, status, body)
        return json.loads(body)

    def digest(self, repository: str, reference: str) -> str | None:
        status, headers, _ = self.get(f"{repository}/manifests/{reference}")
        return headers["Docker-Content-Digest"] if status == 200 else None

    def tags(self, repository: str) -> list[str]:
        status, _, body = self.get(f"{repository}/tags/list")
        if status == 404:  # a repository without a tag is unknown to the tag listing
            return []
        return sorted(json.loads(body)["tags"] or [])


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    folder = tmp_path_factory.mktemp("registry")
    host = f"127.0.0.1:{free_port()}"
    config = folder / "config.yml"
    config.write_text(
        "version: 0.1\n"
        f"storage:\n  filesystem:\n    rootdirectory: {folder / 'data'}\n"
        f"http:\n  addr: {host}\n"
    )
    sigstore = folder / "sigstore"
    registries_d = folder / "registries.d"
    registries_d.mkdir()
    (registries_d / "test.yaml").write_text(
        f"docker:\n  {host}:\n    lookaside: file://{sigstore}\n"
    )
    command = ["docker-registry", "serve", str(config)]
    with http_server(command, f"http://{host}/v2/", log=folder / "registry.log"):
        yield Registry(host, sigstore, registries_d)


@dataclass
class Key:
    home: Path
    fingerprint: str
    public: Path


def make_key(folder: Path, name: str) -> Key:
    home = folder / name
    home.mkdir(mode=0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    run("gpg", "--batch", "--passphrase", "", "--quick-gen-key", f"{name} <{name}@example.invalid>",
        "ed25519", "sign", "never", env=env)  # fmt: skip
    listing = run("gpg", "--batch", "--with-colons", "--list-secret-keys", env=env)
    fingerprint = next(
        line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr")
    )
    public = folder / f"{name}.gpg"
    public.write_bytes(
        subprocess.run(
            ["gpg", "--batch", "--export", fingerprint], env=env, capture_output=True, check=True
        ).stdout
    )
    return Key(home, fingerprint, public)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Key]]:
    folder = tmp_path_factory.mktemp("gpg")
    made = {name: make_key(folder, name) for name in ("release", "other")}
    yield made
    for key in made.values():
        subprocess.run(["gpgconf", "--kill", "gpg-agent"], env={**os.environ, "GNUPGHOME": str(key.home)},
                       check=False, capture_output=True)  # fmt: skip


@pytest.fixture(scope="module")
def archives(engine: Engine, request: pytest.FixtureRequest) -> tuple[Path, list[str]]:
    """The OCI archive the session built, or, with arm64 opted in, one over both platforms
    (from cached layers)."""
    if os.environ.get("DJANGO_ENTRYPOINT_TEST_ARM64") != "1":
        return images.cache_dir() / "dist", ["linux/amd64"]
    request.getfixturevalue("arm64_image")
    out = images.cache_dir() / "dist-multi"
    engine.build_with_script(out, "amd64", "arm64")
    return out, ["linux/amd64", "linux/arm64"]


def publish(
    registry: Registry, key: Key, repository: str, folder: Path, platforms: list[str],
    *, env: dict[str, str] | None = None,
) -> subprocess.Popen[str]:  # fmt: skip
    return subprocess.Popen(
        [
            sys.executable, str(ROOT / "image" / "build.py"), "publish",
            "--from", str(folder), "--registry", f"{registry.host}/{repository}",
            "--python", images.PYTHON, "--django", images.DJANGO,
            "--platform", ",".join(platforms), "--tls-verify=false",
            "--registries-d", str(registry.registries_d), "--sign-by", key.fingerprint,
        ],
        env={**os.environ, "GNUPGHOME": str(key.home), **(env or {})},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip


@pytest.fixture(scope="module")
def published(
    registry: Registry, keys: dict[str, Key], archives: tuple[Path, list[str]]
) -> dict[str, Any]:
    folder, platforms = archives
    proc = publish(registry, keys["release"], "dje", folder, platforms)
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    [result] = json.loads(stdout)
    return dict(result)


def plan_tags(registry: Registry) -> list[str]:
    out = run(sys.executable, str(ROOT / "image" / "build.py"), "plan", "--registry",
              f"{registry.host}/dje", "--python", images.PYTHON, "--django", images.DJANGO)  # fmt: skip
    [variant] = json.loads(out)
    return list(variant["tags"])


def policy(folder: Path, registry: Registry, key: Key) -> Path:
    """What a user writes: reject everything, except this registry signed by this key."""
    path = folder / f"policy-{key.home.name}.json"
    path.write_text(json.dumps({
        "default": [{"type": "reject"}],
        "transports": {
            "docker": {registry.host: [
                {"type": "signedBy", "keyType": "GPGKeys", "keyPath": str(key.public)}
            ]},
            "oci": {"": [{"type": "insecureAcceptAnything"}]},
        },
    }))  # fmt: skip
    return path


def pull(
    registry: Registry, ref: str, policy_file: Path, out: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "skopeo", "copy", "--policy", str(policy_file),
            "--registries.d", str(registry.registries_d), "--src-tls-verify=false",
            "--remove-signatures", f"docker://{ref}", f"oci:{out}:{ref.rsplit(':', 1)[1]}",
        ],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


class TestConsumer:
    def test_every_planned_tag_points_at_the_one_index(
        self, registry: Registry, published: dict[str, Any]
    ) -> None:
        """Each tag that `plan` lists for the variant is there, and all resolve to one digest."""
        tags = plan_tags(registry)
        assert published["tags"] == tags
        assert registry.tags("dje") >= sorted(t.rsplit(":", 1)[1] for t in tags)
        digests = {registry.digest("dje", t.rsplit(":", 1)[1]) for t in tags}
        assert digests == {published["index"]}

    def test_the_index_has_each_platform(
        self, registry: Registry, published: dict[str, Any], archives: tuple[Path, list[str]]
    ) -> None:
        index = registry.json(f"dje/manifests/{published['index']}")
        found = {
            f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"]
            for m in index["manifests"]
        }
        assert sorted(found) == sorted(archives[1])
        assert found == published["platforms"]

    def test_every_tag_pulls_under_a_policy_requiring_the_key(
        self, registry: Registry, published: dict[str, Any], keys: dict[str, Key], tmp_path: Path
    ) -> None:
        """The index and the platform's manifest each carry a signature for every tag."""
        accept = policy(tmp_path, registry, keys["release"])
        out = tmp_path / "pulled"
        for ref in published["tags"]:
            proc = pull(registry, ref, accept, out)
            assert proc.returncode == 0, (ref, proc.stderr)

    def test_a_policy_requiring_another_key_refuses_every_tag(
        self, registry: Registry, published: dict[str, Any], keys: dict[str, Key], tmp_path: Path
    ) -> None:
        refuse = policy(tmp_path, registry, keys["other"])
        for ref in published["tags"]:
            proc = pull(registry, ref, refuse, tmp_path / "pulled")
            assert proc.returncode != 0, ref
            assert "Source image rejected" in proc.stderr, proc.stderr

    def test_sbom_and_provenance_found_by_digest_name_the_image(
        self, registry: Registry, published: dict[str, Any], archives: tuple[Path, list[str]]
    ) -> None:
        """Per platform, the referrers tag `sha256-<hex>` lists a CycloneDX SBOM (the one built)
        and an in-toto SLSA provenance statement whose subject is that platform's image."""
        revision = run("git", "-C", str(ROOT), "rev-parse", "HEAD").strip()
        for name, digest in published["platforms"].items():
            listing = registry.json(f"dje/manifests/{digest.replace(':', '-')}")
            by_type = {m["artifactType"]: m for m in listing["manifests"]}
            assert sorted(by_type) == [SBOM_TYPE, PROVENANCE_TYPE]
            content = {}
            for artifact_type, entry in by_type.items():
                manifest = registry.json(f"dje/manifests/{entry['digest']}")
                assert manifest["subject"]["digest"] == digest
                [layer] = manifest["layers"]
                content[artifact_type] = registry.json(f"dje/blobs/{layer['digest']}")
            arch = name.split("/")[1]
            beside = archives[0] / f"django-entrypoint-{TAG0}.{arch}.cdx.json"
            assert content[SBOM_TYPE] == json.loads(beside.read_text())
            statement = content[PROVENANCE_TYPE]
            assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
            assert statement["subject"] == [
                {"name": f"{registry.host}/dje", "digest": {"sha256": digest.split(":")[1]}}
            ]
            build = statement["predicate"]["buildDefinition"]
            assert build["externalParameters"]["platform"] == name
            args = build["externalParameters"]["buildArgs"]
            assert args["REVISION"] == revision
            assert args["BASE_DIGEST"].startswith("sha256:")
            assert args["BASE_IMAGE"] == images.OS_IMAGE.format(arch=arch)
            assert statement["predicate"]["runDetails"]["builder"]["id"]

    def test_the_pulled_image_runs(
        self, registry: Registry, published: dict[str, Any], keys: dict[str, Key],
        engine: Engine, tmp_path: Path,
    ) -> None:  # fmt: skip
        """Verified, then run with podman: the entrypoint's --help, exit 0."""
        ref = published["tags"][0]
        out = tmp_path / "pulled"
        proc = pull(registry, ref, policy(tmp_path, registry, keys["release"]), out)
        assert proc.returncode == 0, proc.stderr
        tag = ref.rsplit(":", 1)[1]
        image = engine.podman("pull", "--quiet", f"oci:{out}:{tag}").strip()
        try:
            help_text = engine.podman(
                "run", "--rm", "--network", "host", "--pull", "never", image, "--help"
            )
        finally:
            # podman names an oci: pull after its path; the content is the session's image
            engine.podman("untag", image, f"localhost{out}:{tag}", check=False)
        assert help_text.startswith("usage: django-entrypoint"), help_text


class TestInterruptedPublish:
    def test_a_kill_between_push_and_sign_leaves_no_tag(
        self, registry: Registry, keys: dict[str, Key], archives: tuple[Path, list[str]],
        tmp_path: Path,
    ) -> None:  # fmt: skip
        """Killed while signing, after the push: the index is in the registry by digest, unsigned,
        and no tag points at it; a pull of it under the key's policy is refused. A second run
        finishes the publication."""
        wrapper = tmp_path / "bin"
        wrapper.mkdir()
        marker = tmp_path / "signing"
        real = subprocess.run(["sh", "-c", "command -v skopeo"], capture_output=True, text=True,
                              check=True).stdout.strip()  # fmt: skip
        (wrapper / "skopeo").write_text(
            "#!/bin/sh\n"
            f'case " $* " in *" --sign-by "*) touch {marker}; exec sleep 600;; esac\n'
            f'exec {real} "$@"\n'
        )
        (wrapper / "skopeo").chmod(0o755)
        proc = publish(registry, keys["release"], "interrupted", archives[0], archives[1],
                       env={"PATH": f"{wrapper}:{os.environ['PATH']}"})  # fmt: skip
        try:
            deadline = time.monotonic() + 300
            while not marker.exists():
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "publish never reached the signing step"
                time.sleep(0.1)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            _, stderr = proc.communicate(timeout=60)
        pushed = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
        [event] = [e for e in pushed if e["event"] == "pushed"]
        assert registry.digest("interrupted", event["index"]) == event["index"]
        assert registry.tags("interrupted") == []
        assert not list(registry.sigstore.glob("interrupted@*"))
        ref = f"{registry.host}/interrupted@{event['index']}"
        accept = policy(tmp_path, registry, keys["release"])
        assert pull(registry, ref, accept, tmp_path / "o").returncode != 0
        # Run again, it finishes: every tag, signed.
        again = publish(registry, keys["release"], "interrupted", archives[0], archives[1])
        stdout, stderr = again.communicate(timeout=600)
        assert again.returncode == 0, stderr
        [result] = json.loads(stdout)
        assert result["index"] == event["index"]
        assert len(registry.tags("interrupted")) == len(result["tags"]) + len(archives[1])
        for tagged in result["tags"]:
            pulled = pull(registry, tagged, accept, tmp_path / "o")
            assert pulled.returncode == 0, pulled.stderr


def cosign_key(folder: Path, passphrase: bytes) -> tuple[Path, ec.EllipticCurvePublicKey]:
    """A key file as `cosign generate-key-pair` writes it: scrypt and NaCl secretbox around a
    PKCS #8 ECDSA P-256 key, in an ENCRYPTED SIGSTORE PRIVATE KEY block."""
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    salt, nonce = os.urandom(32), os.urandom(24)
    secret_key = hashlib.scrypt(passphrase, salt=salt, n=32768, r=8, p=1, dklen=32,
                                maxmem=256 * 1024 * 1024)  # fmt: skip
    sealed = secret.SecretBox(secret_key).encrypt(der, nonce).ciphertext

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    document = json.dumps({
        "kdf": {"name": "scrypt", "params": {"N": 32768, "r": 8, "p": 1}, "salt": b64(salt)},
        "cipher": {"name": "nacl/secretbox", "nonce": b64(nonce)},
        "ciphertext": b64(sealed),
    }).encode()  # fmt: skip
    path = folder / "cosign.key"
    path.write_text(
        "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"
        + "\n".join(textwrap.wrap(b64(document), 64))
        + "\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n"
    )
    return path, key.public_key()


class TestCosignKey:
    def test_every_tag_signed_on_the_index_and_each_platform(
        self, registry: Registry, archives: tuple[Path, list[str]], tmp_path: Path
    ) -> None:
        """--sign-by-sigstore-private-key: the sigstore attachments (`sha256-<hex>.sig`) of the
        index and of each platform's manifest hold one signature per planned tag, each over that
        manifest's digest, each verified with the public key. (Debian 12's skopeo cannot check
        them: built with sigstore disabled.)"""
        key, public = cosign_key(tmp_path, b"release-test")
        (tmp_path / "passphrase").write_bytes(b"release-test\n")
        folder, platforms = archives
        proc = subprocess.run(
            [
                sys.executable, str(ROOT / "image" / "build.py"), "publish",
                "--from", str(folder), "--registry", f"{registry.host}/cosign",
                "--python", images.PYTHON, "--django", images.DJANGO,
                "--platform", ",".join(platforms), "--tls-verify=false",
                "--sign-by-sigstore-private-key", str(key),
                "--sign-passphrase-file", str(tmp_path / "passphrase"),
            ],
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        [published] = json.loads(proc.stdout)
        tags = sorted(t.replace(f"{registry.host}/dje:", f"{registry.host}/cosign:")
                      for t in plan_tags(registry))  # fmt: skip
        for digest in [published["index"], *published["platforms"].values()]:
            attachment = registry.json(f"cosign/manifests/{digest.replace(':', '-')}.sig")
            named = []
            for layer in attachment["layers"]:
                payload = registry.get(f"cosign/blobs/{layer['digest']}")[2]
                signature = base64.b64decode(
                    layer["annotations"]["dev.cosignproject.cosign/signature"]
                )
                public.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
                critical = json.loads(payload)["critical"]
                assert critical["image"]["docker-manifest-digest"] == digest
                assert critical["type"] == "cosign container image signature"
                named.append(critical["identity"]["docker-reference"])
            assert sorted(named) == tags
        assert registry.digest("cosign", "latest") == published["index"]


class TestRefusals:
    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["--sign-by", "ABC"], "publish needs --registry HOST[:PORT]/NAME"),
            (["--registry", "127.0.0.1:1/x"], "publish signs: give one of --sign-by"),
            (["--registry", "127.0.0.1:1/x", "--sign-by", "ABC", "--sign-keyless"],
             "publish signs: give one of --sign-by"),
        ],
    )  # fmt: skip
    def test_without_a_registry_or_one_signing_method(self, args: list[str], message: str) -> None:
        proc = subprocess.run(
            [sys.executable, str(ROOT / "image" / "build.py"), "publish", *args],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert proc.returncode == 2
        assert message in proc.stderr

    def test_a_missing_archive_is_named_and_nothing_is_pushed(self, tmp_path: Path) -> None:
        proc = subprocess.run(
            [sys.executable, str(ROOT / "image" / "build.py"), "publish", "--from", str(tmp_path),
             "--registry", "127.0.0.1:1/x", "--sign-by", "ABC", "--python", "3.13",
             "--django", "5.2", "--platform", "linux/amd64"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert proc.returncode == 1
        archive = tmp_path / f"django-entrypoint-{TAG0}.oci.tar"
        assert f"{archive} not found: run `image/build.py build --out` first" in proc.stderr
        assert "no tag was written" in proc.stderr
