#!/usr/bin/env python3
"""Build the image matrix with buildah: one image per (Python, Django line), per platform.

    python3 image/build.py plan  [--version V] [--registry REPO]   # the matrix and tags, as JSON
    python3 image/build.py build [--python 3.13] [--django 5.2] [--platform linux/amd64,...]
    python3 image/build.py base  [--suite trixie] [--platform ...]   # a base from Debian packages
    python3 image/build.py publish --registry HOST[:PORT]/NAME [--sign-by FINGERPRINT] ...

``plan`` is what the release workflow reads, so the tags are defined here only. ``build`` resolves
each base image to a digest (recorded in the labels), builds every platform with ``buildah bud``,
joins them in a manifest list per tag, and writes to ``--out`` one OCI archive per variant (all
its platforms) with the image's CycloneDX SBOM of each platform beside it. Platforms other than
the host's run under qemu-user-static (binfmt_misc); see docs/image.md, "Images and tags".
``base`` makes a base image without any registry: a Debian root filesystem from Debian's packages
(debootstrap) committed as a local image per platform, for ``build --base ... --pull never``.
``publish`` pushes the archives to a registry, signs them and only then tags them (image/publish.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHONS = ("3.12", "3.13")
DJANGO_LINES = ("5.2", "6.0", "6.1")
DJANGO_LTS = "5.2"
DEFAULT_BASE = "docker.io/library/python:{python}-slim-trixie"
LOCAL_BASE = "localhost/debian-python:{suite}-{arch}"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
SBOM_PATH = "/usr/share/doc/django-entrypoint/sbom.cdx.json"


def project_version() -> str:
    version: str = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    return version


@dataclass(frozen=True)
class Variant:
    python: str
    django: str

    def tags(self, version: str) -> list[str]:
        """The first tag never moves; the others float to the newest build that matches them."""
        suffix = f"py{self.python}-django{self.django}"
        minor = ".".join(version.split(".")[:2])
        tags = [f"{version}-{suffix}", f"{minor}-{suffix}", suffix]
        if self.python == PYTHONS[-1] and self.django == DJANGO_LTS:
            tags.append("latest")
        return tags


def plan(
    variants: Sequence[Variant], *, version: str, registry: str, base: str
) -> list[dict[str, object]]:
    return [
        {
            "python": v.python,
            "django": v.django,
            "base": base.format(python=v.python, arch="{arch}"),
            "tags": [f"{registry}:{tag}" for tag in v.tags(version)],
        }
        for v in variants
    ]


def run(*cmd: str, capture: bool = False) -> str:
    """Run a tool; its output is returned, or sent to stderr: stdout is the command's answer."""
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    proc = subprocess.run(
        cmd, check=True, text=True, stdout=subprocess.PIPE if capture else sys.stderr
    )
    return proc.stdout or ""


def base_digest(ref: str, *, arch: str, pull: str) -> str:
    if pull != "never":
        run("buildah", "pull", "--quiet", "--platform", f"linux/{arch}", ref, capture=True)
    return run("podman", "image", "inspect", "--format", "{{.Digest}}", ref, capture=True).strip()


def extract(image: str, path: str, dest: Path) -> None:
    """Copy one file out of an image (of any platform: nothing runs)."""
    container = run("buildah", "from", "--pull=never", image, capture=True).strip()
    try:
        mount = run("buildah", "mount", container, capture=True).strip()
        shutil.copyfile(Path(mount) / path.lstrip("/"), dest)
    finally:
        run("buildah", "rm", container, capture=True)


@dataclass(frozen=True)
class Options:
    name: str
    version: str
    platforms: list[str]
    base: str
    pull: str
    out: Path
    revision: str
    source: str
    pip_ca: Path | None
    pip_index_url: str


def build_variant(variant: Variant, opts: Options) -> None:
    tags = variant.tags(opts.version)
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    per_platform = []
    for plat in opts.platforms:
        arch = plat.split("/")[1]
        base = opts.base.format(python=variant.python, arch=arch)
        digest = base_digest(base, arch=arch, pull=opts.pull)
        pinned = base if opts.pull == "never" else f"{base.split('@')[0]}@{digest}"
        image = f"{opts.name}:{tags[0]}-{arch}"
        secret = (
            [
                "--secret",
                f"id=pip-ca,src={opts.pip_ca}",
                "--build-arg",
                "PIP_CERT=/run/secrets/pip-ca",
            ]
            if opts.pip_ca
            else []
        )
        args = {
            "BASE_IMAGE": pinned,
            "BASE_DIGEST": digest,
            "DJANGO": variant.django,
            "VERSION": opts.version,
            "REVISION": opts.revision,
            "SOURCE": opts.source,
            "CREATED": created,
            "PIP_INDEX_URL": opts.pip_index_url,
        }
        run(
            "buildah", "bud", "--isolation", "chroot", "--layers", f"--pull={opts.pull}",
            "--platform", plat, *secret,
            *(a for key, value in args.items() for a in ("--build-arg", f"{key}={value}")),
            "-t", image, str(ROOT),
        )  # fmt: skip
        per_platform.append(image)
        extract(image, SBOM_PATH, opts.out / f"django-entrypoint-{tags[0]}.{arch}.cdx.json")
    for tag in tags:
        ref = f"{opts.name}:{tag}"
        subprocess.run(["buildah", "manifest", "rm", ref], capture_output=True, check=False)
        subprocess.run(["buildah", "rmi", ref], capture_output=True, check=False)
        run("buildah", "manifest", "create", ref, capture=True)
        for image in per_platform:
            run("buildah", "manifest", "add", ref, image, capture=True)
    archive = opts.out / f"django-entrypoint-{tags[0]}.oci.tar"
    archive.unlink(missing_ok=True)
    run("buildah", "manifest", "push", "--all", "--quiet", f"{opts.name}:{tags[0]}",
        f"oci-archive:{archive}")  # fmt: skip


def make_base(suite: str, *, arch: str, name: str, mirror: str, cache: Path) -> str:
    """A Debian image with python3 and python3-venv from Debian's packages, as if pulled.

    The root filesystem is kept in ``cache`` (debootstrap takes a minute for the host's platform,
    minutes for another one under qemu); the image is committed once per name.
    """
    image = name.format(suite=suite, arch=arch)
    rootfs = cache / f"rootfs-{suite}-{arch}"
    if not (rootfs / "usr" / "bin" / "python3").exists():
        partial = rootfs.with_name(rootfs.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        run(  # progress to stderr: stdout is the JSON answer
            shutil.which("debootstrap") or "/usr/sbin/debootstrap", f"--arch={arch}",
            "--variant=minbase", "--include=python3,python3-venv,ca-certificates",
            suite, str(partial), mirror,
        )  # fmt: skip
        partial.rename(rootfs)
    exists = subprocess.run(["podman", "image", "exists", image], check=False)
    if exists.returncode == 0:
        return image
    container = run("buildah", "from", "scratch", capture=True).strip()
    try:
        run("buildah", "copy", "--quiet", container, f"{rootfs}/", "/", capture=True)
        run("buildah", "config", "--os", "linux", "--arch", arch, container)
        run("buildah", "commit", "--quiet", container, image, capture=True)
    finally:
        run("buildah", "rm", container, capture=True)
    return image


def git_revision() -> str:
    proc = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    )
    return proc.stdout.strip() or "unknown"


def csv(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["plan", "build", "base", "publish"])
    parser.add_argument("--python", type=csv, default=list(PYTHONS), help="e.g. 3.12,3.13")
    parser.add_argument("--django", type=csv, default=list(DJANGO_LINES), help="e.g. 5.2,6.1")
    host = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    parser.add_argument("--platform", type=csv, default=[f"linux/{host}"])
    parser.add_argument("--base", default=DEFAULT_BASE, help="{python} and {arch} are filled in")
    parser.add_argument("--pull", choices=["missing", "always", "never"], default="missing")
    parser.add_argument("--version", default=project_version())
    parser.add_argument("--registry", help="HOST[:PORT]/NAME (plan: ghcr.io/OWNER/...)")
    parser.add_argument("--name", help="local image name (build: localhost/django-entrypoint; "
                        f"base: {LOCAL_BASE}, {{suite}} and {{arch}} filled in)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=ROOT / "dist" / "images")
    parser.add_argument("--source", default="")
    parser.add_argument("--revision", help="git commit recorded in the labels (default: HEAD)")
    parser.add_argument("--pip-ca", type=Path, help="CA bundle for a PyPI proxy (build secret)")
    parser.add_argument("--pip-index-url", default="", help="a PyPI mirror's simple index")
    base = parser.add_argument_group("base")
    base.add_argument("--suite", default="trixie", help="Debian release (trixie: Python 3.13)")
    base.add_argument("--mirror", default=DEBIAN_MIRROR)
    base.add_argument("--cache", type=Path, default=ROOT / ".cache" / "base",
                      help="where the root filesystems are kept")  # fmt: skip
    pub = parser.add_argument_group("publish")
    pub.add_argument("--from", dest="archives", type=Path,
                     help="publish the archives `build --out DIR` wrote there, without building")  # fmt: skip
    pub.add_argument("--tls-verify", choices=["true", "false"], default="true")
    pub.add_argument(
        "--registries-d", type=Path, help="where signatures go (containers-registries.d)"
    )
    pub.add_argument("--sign-by", metavar="FINGERPRINT", help="GPG key (from GNUPGHOME)")
    pub.add_argument("--sign-by-sigstore-private-key", type=Path, metavar="PATH")
    pub.add_argument("--sign-passphrase-file", type=Path, metavar="PATH")
    pub.add_argument("--sign-keyless", action="store_true", help="cosign, the CI's OIDC identity")
    pub.add_argument("--builder-id", default=default_builder(), help="provenance's builder.id")
    args = parser.parse_args(argv)
    for value, allowed in ((args.python, PYTHONS), (args.django, DJANGO_LINES)):
        unknown = sorted(set(value) - set(allowed))
        if unknown:
            parser.error(f"unsupported {', '.join(unknown)}: choose from {', '.join(allowed)}")
    if args.command == "publish":
        if not args.registry:
            parser.error("publish needs --registry HOST[:PORT]/NAME")
        methods = [args.sign_by, args.sign_by_sigstore_private_key, args.sign_keyless]
        if sum(map(bool, methods)) != 1:
            parser.error("publish signs: give one of --sign-by, --sign-by-sigstore-private-key, "
                         "--sign-keyless")  # fmt: skip
    return args


def default_builder() -> str:
    """GitHub's workflow reference when run there, this machine otherwise."""
    workflow = os.environ.get("GITHUB_WORKFLOW_REF")
    if workflow:
        return f"{os.environ.get('GITHUB_SERVER_URL', 'https://github.com')}/{workflow}"
    return f"local:{platform.node()}"


def publish_variants(variants: Sequence[Variant], args: argparse.Namespace) -> int:
    import publish  # noqa: PLC0415  # image/publish.py, beside this script

    archives = args.archives or args.out
    dest = publish.Destination(
        repository=args.registry,
        tls_verify=args.tls_verify == "true",
        registries_d=args.registries_d,
        signing=publish.Signing(
            gpg_key=args.sign_by,
            sigstore_key=args.sign_by_sigstore_private_key,
            passphrase_file=args.sign_passphrase_file,
            keyless=args.sign_keyless,
        ),
        builder_id=args.builder_id,
    )
    published = []
    for variant in variants:
        tags = variant.tags(args.version)
        stem = archives / f"django-entrypoint-{tags[0]}"
        target = publish.Target(
            archive=stem.with_name(stem.name + ".oci.tar"),
            sboms={
                p.split("/")[1]: stem.with_name(f"{stem.name}.{p.split('/')[1]}.cdx.json")
                for p in args.platform
            },
            tags=tags,
            platforms=args.platform,
        )
        try:
            published.append(publish.publish(target, dest))
        except (publish.PublishError, subprocess.CalledProcessError) as error:
            print(f"image/build.py publish: {error}; no tag was written", file=sys.stderr)
            return 1
    print(json.dumps(published, indent=2))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    variants = [Variant(p, d) for p in args.python for d in args.django]
    if args.command == "plan":
        registry = args.registry or "ghcr.io/OWNER/django-entrypoint"
        matrix = plan(variants, version=args.version, registry=registry, base=args.base)
        print(json.dumps(matrix, indent=2))
        return 0
    if os.geteuid() != 0:
        print(f"image/build.py {args.command}: run as root (buildah --isolation chroot)",
              file=sys.stderr)  # fmt: skip
        return 1
    if args.command == "base":
        made = [
            make_base(args.suite, arch=p.split("/")[1], name=args.name or LOCAL_BASE,
                      mirror=args.mirror, cache=args.cache)
            for p in args.platform
        ]  # fmt: skip
        print(json.dumps(made))
        return 0
    if args.command == "build" or not args.archives:
        args.out.mkdir(parents=True, exist_ok=True)
        opts = Options(
            name=args.name or "localhost/django-entrypoint",
            version=args.version,
            platforms=args.platform,
            base=args.base,
            pull=args.pull,
            out=args.out,
            revision=args.revision or git_revision(),
            source=args.source,
            pip_ca=args.pip_ca,
            pip_index_url=args.pip_index_url,
        )
        for variant in variants:
            build_variant(variant, opts)
    if args.command == "publish":
        return publish_variants(variants, args)
    print(json.dumps(sorted(str(p) for p in args.out.iterdir())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
