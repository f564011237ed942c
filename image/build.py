#!/usr/bin/env python3
"""Build the image matrix with buildah: one image per (Python, Django line), per platform.

    python3 image/build.py plan  [--version V] [--registry REPO]   # the matrix and tags, as JSON
    python3 image/build.py build [--python 3.13] [--django 5.2] [--platform linux/amd64,...]

``plan`` is what the release workflow reads, so the tags are defined here only. ``build`` resolves
each base image to a digest (recorded in the labels), builds every platform with ``buildah bud``,
joins them in a manifest list per tag, and writes to ``--out`` one OCI archive per variant (all
its platforms) with the image's CycloneDX SBOM of each platform beside it. Platforms other than
the host's run under qemu-user-static (binfmt_misc); see docs/image.md, "Images and tags".
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
PYTHONS = ("3.12", "3.13")
DJANGO_LINES = ("5.2", "6.0", "6.1")
DJANGO_LTS = "5.2"
DEFAULT_BASE = "docker.io/library/python:{python}-slim-trixie"
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
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, check=True, text=True, stdout=subprocess.PIPE if capture else None)
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


def git_revision() -> str:
    proc = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    )
    return proc.stdout.strip() or "unknown"


def csv(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["plan", "build"])
    parser.add_argument("--python", type=csv, default=list(PYTHONS), help="e.g. 3.12,3.13")
    parser.add_argument("--django", type=csv, default=list(DJANGO_LINES), help="e.g. 5.2,6.1")
    host = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    parser.add_argument("--platform", type=csv, default=[f"linux/{host}"])
    parser.add_argument("--base", default=DEFAULT_BASE, help="{python} and {arch} are filled in")
    parser.add_argument("--pull", choices=["missing", "always", "never"], default="missing")
    parser.add_argument("--version", default=project_version())
    parser.add_argument("--registry", default="ghcr.io/OWNER/django-entrypoint")
    parser.add_argument("--name", default="localhost/django-entrypoint", help="local image name")
    parser.add_argument("--out", type=Path, default=ROOT / "dist" / "images")
    parser.add_argument("--source", default="")
    parser.add_argument("--pip-ca", type=Path, help="CA bundle for a PyPI proxy (build secret)")
    args = parser.parse_args(argv)
    for value, allowed in ((args.python, PYTHONS), (args.django, DJANGO_LINES)):
        unknown = sorted(set(value) - set(allowed))
        if unknown:
            parser.error(f"unsupported {', '.join(unknown)}: choose from {', '.join(allowed)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    variants = [Variant(p, d) for p in args.python for d in args.django]
    if args.command == "plan":
        matrix = plan(variants, version=args.version, registry=args.registry, base=args.base)
        print(json.dumps(matrix, indent=2))
        return 0
    if os.geteuid() != 0:
        print("image/build.py build: run as root (buildah --isolation chroot)", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    opts = Options(
        name=args.name,
        version=args.version,
        platforms=args.platform,
        base=args.base,
        pull=args.pull,
        out=args.out,
        revision=git_revision(),
        source=args.source,
        pip_ca=args.pip_ca,
    )
    for variant in variants:
        build_variant(variant, opts)
    print(json.dumps(sorted(str(p) for p in args.out.iterdir())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
