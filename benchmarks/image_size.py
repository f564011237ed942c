"""What the image adds on top of its base, measured on the images the image tests built.

``python -m benchmarks.image_size`` prints it; ``benchmarks/run`` puts it in results.json and
results.md. The images come from scripts/test (tests/test_image.py builds them in its cache).
"""

from __future__ import annotations

import json
import sys

from tests import images


def measure() -> dict[str, object]:
    engine = images.Engine(images.cache_dir() / "containers")
    tag = f"{images.version()}-py{images.PYTHON}-django{images.DJANGO}"
    sizes: dict[str, object] = {"budget_bytes": images.SIZE_BUDGET_BYTES}
    for arch in ("amd64", "arm64"):
        image, base = f"{images.BUILT}:{tag}-{arch}", images.OS_IMAGE.format(arch=arch)
        if engine.image_exists(image) and engine.image_exists(base):
            sizes[arch] = {"image": image, "added_bytes": engine.added_bytes(image, base)}
    return sizes


if __name__ == "__main__":
    result = measure()
    print(json.dumps(result, indent=2))
    sys.exit(0 if "amd64" in result else 1)
