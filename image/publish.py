"""Publish built images: push by digest, sign, attach SBOM and provenance, and only then tag.

A variant's OCI archive (``build.py build --out``) holds one index over its platforms. Its
publication runs in this order, and a failure or a kill at any point before the last step leaves
the registry with content reachable only by digest, never a tag on an unsigned or partial index:

1. push the index and every platform's manifest and blobs by digest (``skopeo copy --all``,
   digests preserved); this push writes no signature anywhere (a throw-away registries.d);
2. sign: a simple signature names the exact tag it was made for, and a pull checks both the index
   and the platform's manifest, so each of them gets one signature per tag (``skopeo copy
   --sign-identity`` once per tag, locally, each copy keeping the signatures of the one before);
   one more copy delivers them all where the registries.d configuration says (a lookaside
   directory, or sigstore attachments in the registry). Keyless: ``cosign sign --recursive``;
3. attach each platform's CycloneDX SBOM and an in-toto SLSA provenance statement as OCI artifacts
   whose ``subject`` is that platform's manifest, listed by the registry's referrers API or, where
   it has none, in the referrers tag schema (``sha256-<hex>``);
4. tag: the index's exact bytes put under each tag.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import ssl
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
EMPTY = "application/vnd.oci.empty.v1+json"
SBOM_TYPE = "application/vnd.cyclonedx+json"
PROVENANCE_TYPE = "application/vnd.in-toto+json"
BUILD_TYPE = "https://github.com/django-entrypoint/django-entrypoint/blob/main/image/build.py"
LABEL = "org.opencontainers.image."
SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"


class PublishError(Exception):
    """Something the publisher can name and fix (a missing file, a refusing registry)."""


@dataclass(frozen=True)
class Signing:
    gpg_key: str | None = None  # fingerprint, key from GNUPGHOME
    sigstore_key: Path | None = None  # cosign-compatible private key
    passphrase_file: Path | None = None
    keyless: bool = False  # cosign sign with the workflow's OIDC identity

    def skopeo_flags(self) -> list[str]:
        flags = ["--sign-by", self.gpg_key] if self.gpg_key else []
        if self.passphrase_file:
            flags += ["--sign-passphrase-file", str(self.passphrase_file)]
        return flags


@dataclass(frozen=True)
class Target:
    """One variant: its archive, the SBOM of each platform, the tags it gets."""

    archive: Path
    sboms: Mapping[str, Path]  # architecture -> CycloneDX file
    tags: list[str]
    platforms: list[str]  # what the archive must hold, e.g. ["linux/amd64"]


@dataclass(frozen=True)
class Destination:
    repository: str  # HOST[:PORT]/NAME
    tls_verify: bool
    registries_d: Path | None
    signing: Signing
    builder_id: str


def step(event: str, **fields: object) -> None:
    """One line per step on stderr, for logs and for whoever watches the publication."""
    print(json.dumps({"event": event, **fields}), file=sys.stderr, flush=True)


def skopeo(*args: str) -> None:
    print("+ skopeo", " ".join(args), file=sys.stderr, flush=True)
    subprocess.run(["skopeo", *args], check=True, stdout=subprocess.DEVNULL)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# -- the archive --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Platform:
    descriptor: dict[str, object]  # the index's entry: mediaType, digest, size, platform
    config: dict[str, object]

    @property
    def digest(self) -> str:
        return str(self.descriptor["digest"])

    @property
    def name(self) -> str:
        platform = self.descriptor.get("platform")
        assert isinstance(platform, dict)
        return f"{platform['os']}/{platform['architecture']}"

    @property
    def labels(self) -> dict[str, str]:
        config = self.config.get("config")
        labels = config.get("Labels") if isinstance(config, dict) else None
        return {str(k): str(v) for k, v in (labels or {}).items()}


@dataclass(frozen=True)
class Layout:
    path: Path
    index: bytes
    platforms: list[Platform]

    @property
    def digest(self) -> str:
        return sha256(self.index)


def open_archive(archive: Path, into: Path) -> Layout:
    if not archive.is_file():
        raise PublishError(f"{archive} not found: run `image/build.py build --out` first")
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")

    def blob(digest: object) -> bytes:
        return (into / "blobs" / "sha256" / str(digest).removeprefix("sha256:")).read_bytes()

    [top] = json.loads((into / "index.json").read_text())["manifests"]
    if top["mediaType"] != INDEX:
        raise PublishError(f"{archive} holds one image, not an index over its platforms")
    index = blob(top["digest"])
    platforms = []
    for descriptor in json.loads(index)["manifests"]:
        manifest = json.loads(blob(descriptor["digest"]))
        platforms.append(Platform(descriptor, json.loads(blob(manifest["config"]["digest"]))))
    return Layout(into, index, platforms)


# -- the registry's HTTP API, for what skopeo cannot do: artifacts' lists and tags -------------


def credentials(host: str) -> str | None:
    """user:password for ``host`` from the auth file the containers tools use, if any."""
    candidates = [os.environ.get("REGISTRY_AUTH_FILE", "")]
    if os.environ.get("XDG_RUNTIME_DIR"):
        candidates.append(f"{os.environ['XDG_RUNTIME_DIR']}/containers/auth.json")
    candidates += [
        str(Path.home() / ".config" / "containers" / "auth.json"),
        str(Path(os.environ.get("DOCKER_CONFIG", Path.home() / ".docker")) / "config.json"),
    ]
    for candidate in filter(None, candidates):
        path = Path(candidate)
        if path.is_file():
            entry = json.loads(path.read_text()).get("auths", {}).get(host, {})
            if entry.get("auth"):
                return base64.b64decode(entry["auth"]).decode()
    return None


def lower(headers: Message) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def insecure_context() -> ssl.SSLContext:
    """--tls-verify=false: a registry with a self-signed certificate, as skopeo accepts it."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class Registry:
    """The OCI distribution API of one repository, anonymous, basic or bearer-token auth."""

    def __init__(self, repository: str, *, tls_verify: bool) -> None:
        self.host, _, self.name = repository.partition("/")
        self.tls_verify = tls_verify
        self.scheme = "https"
        self.authorization: str | None = None

    def request(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """(status, headers with lower-case names, body); 401 answered once with credentials."""
        if not url.startswith(("http://", "https://")):
            url = f"{self.scheme}://{self.host}{url}"
        for attempt in range(2):
            request = urllib.request.Request(
                url, data=body, method=method, headers=dict(headers or {})
            )
            if self.authorization:
                request.add_header("Authorization", self.authorization)
            try:
                context = None if self.tls_verify else insecure_context()
                with urllib.request.urlopen(request, timeout=60, context=context) as response:
                    return response.status, lower(response.headers), response.read()
            except urllib.error.HTTPError as error:
                if error.code == 401 and attempt == 0:
                    self.authenticate(error.headers.get("WWW-Authenticate", ""))
                    continue
                return error.code, lower(error.headers), error.read()
            except urllib.error.URLError:
                # --tls-verify=false also means plain HTTP, as for the containers tools
                if self.tls_verify or not url.startswith("https://"):
                    raise
                self.scheme = "http"
                url = "http://" + url.removeprefix("https://")
        raise PublishError(f"{self.host} refused the credentials for {self.name}")

    def authenticate(self, challenge: str) -> None:
        secret = credentials(self.host)
        scheme, _, params = challenge.partition(" ")
        if scheme.lower() == "basic" and secret:
            self.authorization = "Basic " + base64.b64encode(secret.encode()).decode()
            return
        if scheme.lower() != "bearer":
            raise PublishError(f"{self.host} asks for {scheme or 'no'} authentication: log in")
        fields = dict(part.strip().split("=", 1) for part in params.split(",") if "=" in part)
        fields = {k: v.strip('"') for k, v in fields.items()}
        query = urllib.parse.urlencode(
            {"service": fields.get("service", ""), "scope": f"repository:{self.name}:pull,push"}
        )
        request = urllib.request.Request(f"{fields['realm']}?{query}")
        if secret:
            request.add_header(
                "Authorization", "Basic " + base64.b64encode(secret.encode()).decode()
            )
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.loads(response.read())
        self.authorization = "Bearer " + (answer.get("token") or answer["access_token"])

    def manifest(self, reference: str) -> bytes | None:
        status, _, body = self.request(
            "GET",
            f"/v2/{self.name}/manifests/{reference}",
            headers={"Accept": f"{INDEX}, {MANIFEST}"},
        )
        if status == 404:
            return None
        if status != 200:
            raise PublishError(f"reading {self.name}:{reference}: HTTP {status} {body[:200]!r}")
        return body

    def put_manifest(self, reference: str, data: bytes, media_type: str) -> dict[str, str]:
        status, headers, body = self.request(
            "PUT", f"/v2/{self.name}/manifests/{reference}", body=data,
            headers={"Content-Type": media_type},
        )  # fmt: skip
        if status not in (200, 201):
            raise PublishError(f"putting {self.name}:{reference}: HTTP {status} {body[:300]!r}")
        return headers

    def put_blob(self, data: bytes) -> str:
        digest = sha256(data)
        if self.request("HEAD", f"/v2/{self.name}/blobs/{digest}")[0] == 200:
            return digest
        status, headers, body = self.request("POST", f"/v2/{self.name}/blobs/uploads/", body=b"")
        if status != 202:
            raise PublishError(f"starting an upload to {self.name}: HTTP {status} {body[:200]!r}")
        location = headers["location"]
        separator = "&" if "?" in location else "?"
        status, _, body = self.request(
            "PUT", f"{location}{separator}digest={digest}", body=data,
            headers={"Content-Type": "application/octet-stream"},
        )  # fmt: skip
        if status != 201:
            raise PublishError(f"uploading to {self.name}: HTTP {status} {body[:200]!r}")
        return digest


# -- the four steps -----------------------------------------------------------------------------


@contextmanager
def no_signatures_registries_d() -> Iterator[Path]:
    """A registries.d under which a copy writes no signature that counts: the first push must
    not replace the signatures of an earlier publication of the same digest with none."""
    with tempfile.TemporaryDirectory(prefix="publish-nosig-") as folder:
        Path(folder, "default.yaml").write_text(
            f"default-docker:\n  lookaside-staging: file://{folder}/discard\n"
        )
        yield Path(folder)


def transport_flags(dest: Destination, *, registries_d: Path | None) -> list[str]:
    flags = [] if dest.tls_verify else ["--dest-tls-verify=false"]
    return flags + (["--registries.d", str(registries_d)] if registries_d else [])


def push(layout: Layout, dest: Destination) -> None:
    with no_signatures_registries_d() as nowhere:
        skopeo(
            "copy", "--all", "--preserve-digests", "--retry-times", "3",
            *transport_flags(dest, registries_d=nowhere),
            f"oci:{layout.path}", f"docker://{dest.repository}@{layout.digest}",
        )  # fmt: skip
    step("pushed", index=layout.digest, platforms={p.name: p.digest for p in layout.platforms})


def sign(layout: Layout, tags: list[str], dest: Destination, work: Path) -> None:
    reference = f"{dest.repository}@{layout.digest}"
    if dest.signing.keyless:
        # The same signatures as below, made by cosign with the CI's OIDC identity: the index and
        # each platform's manifest (--recursive), one signature per tag that names the tag.
        insecure = [] if dest.tls_verify else ["--allow-insecure-registry", "--allow-http-registry"]
        for tag in tags:
            subprocess.run(
                ["cosign", "sign", "--yes", "--recursive", *insecure,
                 "--sign-container-identity", f"{dest.repository}:{tag}", reference],
                check=True,
            )  # fmt: skip
    elif dest.signing.sigstore_key:
        # skopeo can make these too, but Debian 12 builds it with sigstore disabled.
        import sigstore_sign  # noqa: PLC0415  # image/sigstore_sign.py: cryptography, PyNaCl

        key = sigstore_sign.load_key(dest.signing.sigstore_key, dest.signing.passphrase_file)
        registry = Registry(dest.repository, tls_verify=dest.tls_verify)
        for digest in [layout.digest, *(p.digest for p in layout.platforms)]:
            payloads = [sigstore_sign.payload(f"{dest.repository}:{t}", digest) for t in tags]
            attach_signatures(registry, digest, [(p, sigstore_sign.sign(key, p)) for p in payloads])
    else:
        source = f"oci:{layout.path}"
        for number, tag in enumerate(tags):
            signed = work / f"signed-{number}"
            skopeo(
                "copy", "--all", "--preserve-digests", *dest.signing.skopeo_flags(),
                "--sign-identity", f"{dest.repository}:{tag}", source, f"dir:{signed}",
            )  # fmt: skip
            if source.startswith("dir:"):
                shutil.rmtree(source.removeprefix("dir:"))
            source = f"dir:{signed}"
        skopeo(
            "copy", "--all", "--preserve-digests", "--retry-times", "3",
            *transport_flags(dest, registries_d=dest.registries_d), source, f"docker://{reference}",
        )  # fmt: skip
    step("signed", index=layout.digest, tags=tags, manifests=1 + len(layout.platforms))


def attach_signatures(registry: Registry, digest: str, signed: list[tuple[bytes, str]]) -> None:
    """Sigstore attachments: one layer per signature in the manifest tagged ``sha256-<hex>.sig``,
    where cosign and the containers tools look; earlier signatures are kept."""
    tag = digest.replace(":", "-") + ".sig"
    existing = registry.manifest(tag)
    layers: list[dict[str, object]] = json.loads(existing)["layers"] if existing else []
    for data, signature in signed:
        layer = {
            "mediaType": SIMPLE_SIGNING, "digest": registry.put_blob(data), "size": len(data),
            "annotations": {SIGNATURE_ANNOTATION: signature},
        }  # fmt: skip
        if layer not in layers:
            layers.append(layer)
    config = json.dumps(
        {"architecture": "", "os": "", "config": {},
         "rootfs": {"type": "layers", "diff_ids": [layer["digest"] for layer in layers]}},
        separators=(",", ":"),
    ).encode()  # fmt: skip
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": registry.put_blob(config),
            "size": len(config),
        },
        "layers": layers,
    }
    registry.put_manifest(tag, json.dumps(manifest, separators=(",", ":")).encode(), MANIFEST)


def provenance(platform: Platform, dest: Destination) -> dict[str, object]:
    """An in-toto statement with a SLSA v1 predicate, from what the image's labels record."""
    labels = {k.removeprefix(LABEL): v for k, v in platform.labels.items() if k.startswith(LABEL)}
    base_name, base_digest = labels.get("base.name", ""), labels.get("base.digest", "")
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": dest.repository, "digest": {"sha256": platform.digest.split(":")[1]}}],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "platform": platform.name,
                    "buildArgs": {
                        "BASE_IMAGE": base_name,
                        "BASE_DIGEST": base_digest,
                        "VERSION": labels.get("version", ""),
                        "REVISION": labels.get("revision", ""),
                        "SOURCE": labels.get("source", ""),
                        "CREATED": labels.get("created", ""),
                    },
                },
                "resolvedDependencies": [
                    {
                        "uri": f"git+{labels.get('source') or 'unknown'}",
                        "digest": {"gitCommit": labels.get("revision", "")},
                    },
                    {
                        "uri": f"oci://{base_name.split('@')[0]}",
                        "digest": {"sha256": base_digest.removeprefix("sha256:")},
                    },
                ],
            },
            "runDetails": {
                "builder": {"id": dest.builder_id},
                "metadata": {"startedOn": labels.get("created", "")},
            },
        },
    }


def attach(registry: Registry, platform: Platform, *, artifact_type: str, content: bytes) -> str:
    """Push one artifact that refers to ``platform`` and list it among the platform's referrers."""
    empty = registry.put_blob(b"{}")
    layer = registry.put_blob(content)
    created = platform.labels.get(LABEL + "created", "")
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": EMPTY, "digest": empty, "size": 2, "data": "e30="},
        "layers": [{"mediaType": artifact_type, "digest": layer, "size": len(content)}],
        "subject": {key: platform.descriptor[key] for key in ("mediaType", "digest", "size")},
        "annotations": {"org.opencontainers.image.created": created},
    }
    data = json.dumps(manifest, separators=(",", ":")).encode()
    digest = sha256(data)
    headers = registry.put_manifest(digest, data, MANIFEST)
    if "oci-subject" not in headers:
        # No referrers API: keep the list ourselves, under the subject's digest as a tag.
        tag = platform.digest.replace(":", "-")
        existing = registry.manifest(tag)
        listed: list[dict[str, object]] = json.loads(existing)["manifests"] if existing else []
        entry = {
            "mediaType": MANIFEST, "digest": digest, "size": len(data),
            "artifactType": artifact_type, "annotations": manifest["annotations"],
        }  # fmt: skip
        listing = {
            "schemaVersion": 2,
            "mediaType": INDEX,
            "manifests": [m for m in listed if m["digest"] != digest] + [entry],
        }
        registry.put_manifest(tag, json.dumps(listing, separators=(",", ":")).encode(), INDEX)
    return digest


def attach_all(layout: Layout, target: Target, registry: Registry, dest: Destination) -> None:
    for platform in layout.platforms:
        arch = platform.name.split("/")[1]
        sbom = target.sboms[arch].read_bytes()
        statement = json.dumps(provenance(platform, dest), indent=1).encode()
        found = {
            "sbom": attach(registry, platform, artifact_type=SBOM_TYPE, content=sbom),
            "provenance": attach(
                registry, platform, artifact_type=PROVENANCE_TYPE, content=statement
            ),
        }
        step("attached", platform=platform.name, subject=platform.digest, **found)


def tag(layout: Layout, tags: list[str], registry: Registry) -> None:
    for name in tags:
        headers = registry.put_manifest(name, layout.index, INDEX)
        stored = headers.get("docker-content-digest")
        if stored and stored != layout.digest:
            raise PublishError(f"{name} was stored as {stored}, not {layout.digest}")
    step("tagged", index=layout.digest, tags=tags)


def publish(target: Target, dest: Destination) -> dict[str, object]:
    missing = [a for a in (p.split("/")[1] for p in target.platforms) if a not in target.sboms]
    if missing:
        raise PublishError(f"no SBOM for {', '.join(missing)} beside {target.archive}")
    with tempfile.TemporaryDirectory(prefix="publish-") as folder:
        work = Path(folder)
        layout = open_archive(target.archive, work / "layout")
        held = sorted(p.name for p in layout.platforms)
        if held != sorted(target.platforms):
            raise PublishError(
                f"{target.archive} holds {', '.join(held)}, not {', '.join(target.platforms)}: "
                "build it with the same --platform"
            )
        registry = Registry(dest.repository, tls_verify=dest.tls_verify)
        push(layout, dest)
        sign(layout, target.tags, dest, work)
        attach_all(layout, target, registry, dest)
        tag(layout, target.tags, registry)
        return {
            "index": layout.digest,
            "platforms": {p.name: p.digest for p in layout.platforms},
            "tags": [f"{dest.repository}:{t}" for t in target.tags],
        }
