"""Turn the raw results into results.md (tables, ratios, targets) and results.png."""

from __future__ import annotations

from pathlib import Path
from typing import Any

TOOLS = ("django-entrypoint", "manage.py migrate", "djk8s lockedmigrate")


def _fmt(stats: dict[str, float]) -> str:
    return f"{stats['median']:.2f} ({stats['low']:.2f}–{stats['high']:.2f})"


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def _steady(results: dict[str, Any]) -> list[str]:
    rows = results["steady_state"]
    seconds = {key: row["seconds"]["median"] for key, row in rows.items()}
    rss = {key: row["maxrss_mib"]["median"] for key, row in rows.items()}
    lines = [
        "## 1. Steady state: process start → exec (seconds, median (min–max))",
        "",
        "| | variant | seconds | failures | peak RSS MiB |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {key} | {row['label']} | {_fmt(row['seconds'])} | {row['failures']} | {rss[key]:.1f} |"
        for key, row in rows.items()
    ]
    ratios = [
        ("a / c", seconds["a"] / seconds["c"], 1.10),
        ("a / b", seconds["a"] / seconds["b"], 0.45),
        ("a' / b (same stable period)", seconds["a'"] / seconds["b"], None),
        ("a / b' (djk8s without wait4db)", seconds["a"] / seconds["b'"], None),
        ("peak RSS a / c", rss["a"] / rss["c"], 1.10),
    ]
    lines += ["", "| ratio | value | target |", "|---|---|---|"]
    for name, value, target in ratios:
        goal = f"≤ {target:.2f}: {_verdict(value <= target)}" if target else "(context)"
        lines.append(f"| {name} | {value:.2f} | {goal} |")
    return lines


def _fleet(results: dict[str, Any]) -> list[str]:
    rows = results["fleet"]
    sizes = sorted({int(key.split("|")[1]) for key in rows})
    lines = [
        "",
        "## 2. Fleet: N processes at once, 100-migration project (wall seconds)",
        "",
        "| tool | N | empty DB | migrated DB | lock overhead | failures (per run) |",
        "|---|---|---|---|---|---|",
    ]
    for tool in TOOLS:
        for n in sizes:
            empty, migrated = rows.get(f"{tool}|{n}|empty"), rows.get(f"{tool}|{n}|migrated")
            if not empty or not migrated:
                continue
            overhead = empty["seconds"]["median"] - migrated["seconds"]["median"]
            lines.append(
                f"| {tool} | {n} | {_fmt(empty['seconds'])} | "
                f"{_fmt(migrated['seconds'])} | {overhead:.2f} | "
                f"{empty['failures']} / {migrated['failures']} |"
            )
    ep = "django-entrypoint"
    if f"{ep}|1|empty" in rows and f"{ep}|{sizes[-1]}|empty" in rows:
        work = (
            rows[f"{ep}|1|empty"]["seconds"]["median"]
            - rows[f"{ep}|1|migrated"]["seconds"]["median"]
        )
        big = sizes[-1]
        overhead = (
            rows[f"{ep}|{big}|empty"]["seconds"]["median"]
            - rows[f"{ep}|{big}|migrated"]["seconds"]["median"]
        )
        failures = sum(sum(v["failures"]) for k, v in rows.items() if k.startswith(ep))
        lines += [
            "",
            (
                f"django-entrypoint: migration work (N=1) {work:.2f} s; lock overhead "
                f"(N={big}) {overhead:.2f} s; target ≤ work + 1.5 s = {work + 1.5:.2f} s: "
                f"{_verdict(overhead <= work + 1.5)}. Failures at every N: {failures} "
                f"(target 0: {_verdict(failures == 0)})."
            ),
        ]
    return lines


def _graph(results: dict[str, Any]) -> list[str]:
    rows = results["graph_size"]
    sizes = sorted({int(key.split("|")[1]) for key in rows})
    lines = [
        "",
        "## 3. Graph size, steady state (seconds)",
        "",
        "| migrations | django-entrypoint | manage.py migrate --check | ratio | target ≤ 1.05 |",
        "|---|---|---|---|---|",
    ]
    for n in sizes:
        ours, theirs = rows[f"django-entrypoint|{n}"], rows[f"manage.py migrate --check|{n}"]
        ratio = ours["median"] / theirs["median"]
        lines.append(
            f"| {n} | {_fmt(ours)} | {_fmt(theirs)} | {ratio:.2f} | {_verdict(ratio <= 1.05)} |"
        )
    return lines


def _contended(results: dict[str, Any]) -> list[str]:
    if "contended" not in results:  # results.json from before this scenario existed
        return []
    data = results["contended"]
    limit = data["timeout_s"] + 0.5
    lines = [
        "",
        "## 4. App queries on a table a migration ALTERs behind a long app transaction",
        "",
        f"An app transaction holds the table for {data['blocker_s']:g} s; an app client queries",
        "the table in a loop while the migration runs (seconds, median (min–max) over runs).",
        "",
        "| tool | worst query | p99 query | migration |",
        "|---|---|---|---|",
    ]
    for tool, runs in data["runs"].items():
        cells = [
            _fmt(
                {
                    "median": _median([r[k] for r in runs]),
                    "low": min(r[k] for r in runs),
                    "high": max(r[k] for r in runs),
                }
            )
            for k in ("worst_s", "p99_s", "migration_s")
        ]
        lines.append(f"| {tool} | {' | '.join(cells)} |")
    worst = max(r["worst_s"] for r in data["runs"]["django-entrypoint"])
    lines += [
        "",
        (
            f"django-entrypoint: worst app query over every run {worst:.2f} s; target ≤ "
            f"table-lock timeout + 0.5 s = {limit:.2f} s: {_verdict(worst <= limit)}."
        ),
    ]
    return lines


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _image(results: dict[str, Any]) -> list[str]:
    sizes = results.get("image_size") or {}
    budget = sizes.get("budget_bytes", 80_000_000)
    lines = [
        "",
        "## 5. Image: layers added on top of the base (uncompressed)",
        "",
        f"| platform | MB | budget ≤ {budget / 1e6:.0f} MB |",
        "|---|---|---|",
    ]
    for arch in ("amd64", "arm64"):
        if arch in sizes:
            added = sizes[arch]["added_bytes"]
            lines.append(f"| {arch} | {added / 1e6:.1f} | {_verdict(added <= budget)} |")
        else:
            lines.append(f"| {arch} | not measured (no image built by scripts/test) | |")
    return lines


def _risk(results: dict[str, Any]) -> list[str]:
    if "risk" not in results:  # results.json from before this scenario existed
        return []
    data = results["risk"]
    seconds = data["seconds"]
    return [
        "",
        f"## 6. Lock analysis of {data['migrations']} pending migrations (seconds)",
        "",
        "Each run a fresh process: pglast's import, the SQL of every operation, the parse, the",
        "catalog query (benchmarks/risk.py). Nothing runs when nothing is pending.",
        "",
        f"| median (min–max) | target ≤ {data['target_s']:g} s |",
        "|---|---|",
        f"| {_fmt(seconds)} | {_verdict(seconds['median'] <= data['target_s'])} |",
    ]


def write(results: dict[str, Any], markdown: Path, picture: Path) -> None:
    steady = _steady(results)
    head = [
        "# Benchmark results",
        "",
        f"Machine: {results['machine']}.",
        (
            f"Repeats: {results['repeats']} (fleet: {results['fleet_repeats']}). "
            "Written by `benchmarks/run` from one run; do not edit by hand."
        ),
        "",
    ]
    body = (
        steady
        + _fleet(results)
        + _graph(results)
        + _contended(results)
        + _image(results)
        + _risk(results)
    )
    markdown.write_text("\n".join(head + body) + "\n")
    _plot(results, picture)


def _plot(results: dict[str, Any], picture: Path) -> None:
    import matplotlib as mpl  # noqa: PLC0415 - only the benchmark venv has it

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, axes = plt.subplots(1, 3, figsize=(16, 5))
    steady = results["steady_state"]
    names = list(steady)
    axes[0].bar(names, [row["seconds"]["median"] for row in steady.values()], color="tab:blue")
    axes[0].set_title("Steady state: start → exec (s, median)\na=entrypoint b=djk8s c=floor")
    fleet = results["fleet"]
    sizes = sorted({int(key.split("|")[1]) for key in fleet})
    for tool in TOOLS:
        rows = [fleet.get(f"{tool}|{n}|empty", {}) for n in sizes]
        values = [row.get("seconds", {}).get("median") for row in rows]
        axes[1].plot(sizes, values, marker="o", label=tool)
        for n, value, row in zip(sizes, values, rows, strict=True):
            failed = max(row.get("failures", [0]))
            if failed:
                axes[1].annotate(
                    f"{failed}/{n} failed",
                    (n, value),
                    textcoords="offset points",
                    xytext=(-60, 6),
                    fontsize=8,
                    color="tab:red",
                )
    axes[1].set_title("Fleet on an empty DB: wall s until all done")
    axes[1].set_xlabel("replicas started at once")
    axes[1].legend()
    graph = results["graph_size"]
    gsizes = sorted({int(key.split("|")[1]) for key in graph})
    for tool in ("django-entrypoint", "manage.py migrate --check"):
        axes[2].plot(
            gsizes, [graph[f"{tool}|{n}"]["median"] for n in gsizes], marker="o", label=tool
        )
    axes[2].set_title("Steady state vs migration count (s)")
    axes[2].set_ylim(bottom=0)
    axes[2].set_xlabel("migrations")
    axes[2].legend()
    fig.tight_layout()
    fig.savefig(picture, dpi=90)


if __name__ == "__main__":
    # Re-render results.md and results.png from the raw results.json of the last run.
    import json
    import sys

    here = Path(__file__).resolve().parent
    raw = json.loads((here / "results.json").read_text())
    write(raw, here / "results.md", here / "results.png")
    sys.stdout.write((here / "results.md").read_text())
