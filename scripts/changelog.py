"""Print the CHANGELOG.md section of one version: the release notes of its GitHub release.

    python3 scripts/changelog.py 0.2.0 > notes.md

Exits 1, naming the problem, when the version has no section or the section is empty, so a
release cannot go out without its notes.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

CHANGELOG = Path(__file__).resolve().parent.parent / "CHANGELOG.md"


def section(text: str, version: str) -> str | None:
    """The body under ``## [VERSION]`` (with or without a date) up to the next ``## `` heading."""
    heading = re.compile(
        rf"^## \[{re.escape(version)}\](?: - \d{{4}}-\d{{2}}-\d{{2}})?\s*$", re.MULTILINE
    )
    found = heading.search(text)
    if not found:
        return None
    rest = text[found.end() :]
    following = re.search(r"^## ", rest, re.MULTILINE)
    body = rest[: following.start()] if following else rest
    return body.strip() or None


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: scripts/changelog.py VERSION", file=sys.stderr)
        return 2
    body = section(CHANGELOG.read_text(), argv[0])
    if body is None:
        print(f"CHANGELOG.md has no non-empty '## [{argv[0]}]' section: add one", file=sys.stderr)
        return 1
    print(body)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
