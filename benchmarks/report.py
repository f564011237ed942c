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
        *_provenance(results, "steady_state"),
        "| | variant | seconds | failures | peak RSS MiB |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {key} | {row['label']} | {_fmt(row['seconds'])} | {row['failures']} | {rss[key]:.1f} |"
        for key, row in rows.items()
    ]
    ratios = [
        ("a / c", seconds["a"] / seconds["c"], 1.10),
        *(
            [
                ("d / c (the defaults against the floor)", seconds["d"] / seconds["c"], None),
                ("d − a, seconds (what the defaults add)", seconds["d"] - seconds["a"], 0.50),
            ]
            if "d" in seconds
            else []
        ),
        ("a / b", seconds["a"] / seconds["b"], 0.45),
        ("a' / b (the same settings)", seconds["a'"] / seconds["b"], None),
        ("a / b' (djk8s without wait4db)", seconds["a"] / seconds["b'"], None),
        ("peak RSS a / c", rss["a"] / rss["c"], 1.10),
    ]
    lines += ["", "| ratio | value | target |", "|---|---|---|"]
    for name, value, target in ratios:
        goal = f"≤ {target:.2f}: {_verdict(value <= target)}" if target else "(context)"
        lines.append(f"| {name} | {value:.2f} | {goal} |")
    return lines


def _median_of(rows: dict[str, Any], key: str) -> float | None:
    row = rows.get(key)
    return row["seconds"]["median"] if row else None


def _overhead(rows: dict[str, Any], tool: str, n: int) -> float | None:
    """The fleet's wall time beyond the same fleet on a migrated database."""
    empty, migrated = (
        _median_of(rows, f"{tool}|{n}|empty"),
        _median_of(rows, f"{tool}|{n}|migrated"),
    )
    return None if empty is None or migrated is None else empty - migrated


def _fleet(results: dict[str, Any]) -> list[str]:
    rows = results["fleet"]
    sizes = sorted({int(key.split("|")[1]) for key in rows})
    lines = [
        "",
        "## 2. Fleet: N processes at once, 100-migration project (wall seconds)",
        "",
        *_provenance(results, "fleet"),
        (
            "Overhead: the fleet on an empty database minus the same fleet on the migrated one; "
            "beyond work: that minus one replica's migration work (the overhead at N=1)."
        ),
        "",
        "| tool | N | empty DB | migrated DB | overhead | beyond work | failures (per run) |",
        "|---|---|---|---|---|---|---|",
    ]
    for tool in TOOLS:
        work = _overhead(rows, tool, 1)
        for n in sizes:
            overhead = _overhead(rows, tool, n)
            if overhead is None:
                continue
            empty, migrated = rows[f"{tool}|{n}|empty"], rows[f"{tool}|{n}|migrated"]
            beyond = f"{overhead - work:.2f}" if work is not None else "–"
            lines.append(
                f"| {tool} | {n} | {_fmt(empty['seconds'])} | {_fmt(migrated['seconds'])} | "
                f"{overhead:.2f} | {beyond} | {empty['failures']} / {migrated['failures']} |"
            )
    return lines + _fleet_targets(rows, sizes)


def _fleet_targets(rows: dict[str, Any], sizes: list[int]) -> list[str]:
    ours, theirs = "django-entrypoint", "djk8s lockedmigrate"
    work = _overhead(rows, ours, 1)
    if work is None:
        return []
    failures = sum(sum(v["failures"]) for k, v in rows.items() if k.startswith(ours))
    lines = [
        "",
        (
            f"django-entrypoint: one migration run (N=1) {work:.2f} s. Failures at every N: "
            f"{failures} (target 0: {_verdict(failures == 0)})."
        ),
    ]
    for n in (size for size in sizes if size >= 20):
        overhead = _overhead(rows, ours, n)
        if overhead is None:
            continue
        text = f"N={n}: overhead {overhead:.2f} s"
        if n == 20:
            text += (
                f"; target ≤ work + 0.3 s = {work + 0.3:.2f} s: {_verdict(overhead <= work + 0.3)}"
            )
        their_work, their_overhead = _overhead(rows, theirs, 1), _overhead(rows, theirs, n)
        if their_work is not None and their_overhead is not None:
            mine, their = overhead - work, their_overhead - their_work
            text += (
                f"; beyond work {mine:.2f} s vs djk8s {their:.2f} s (target: no worse): "
                f"{_verdict(mine <= their)}"
            )
        lines.append(f"- {text}.")
    return lines


def _graph(results: dict[str, Any]) -> list[str]:
    rows = results["graph_size"]
    sizes = sorted({int(key.split("|")[1]) for key in rows})
    lines = [
        "",
        "## 3. Graph size, steady state (seconds)",
        "",
        *_provenance(results, "graph_size"),
        (
            "Floor: `django.setup()`, one query of django_migrations, then exec `true` as the "
            "entrypoint does. Floor + checks: the same with Django's system checks, which the "
            "entrypoint runs once (as `migrate` does) and the floor does not. + structlog: "
            "that with structlog imported, the logger the entrypoint is built on."
        ),
        "",
        (
            "| migrations | django-entrypoint | migrate --check | floor | floor + checks | "
            "+ structlog | ours / --check | ours / floor | ours / (floor + checks) | "
            "ours / (+ structlog) |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n in sizes:
        ours, theirs = rows[f"django-entrypoint|{n}"], rows[f"manage.py migrate --check|{n}"]
        floor, checked = rows.get(f"floor|{n}"), rows.get(f"floor + system checks|{n}")
        check = ours["median"] / theirs["median"]
        target = f" (≤ 0.50: {_verdict(check <= 0.5)})" if n >= 2000 else ""
        cells = [_fmt(ours), _fmt(theirs), _fmt(floor) if floor else "–"]
        logged = rows.get(f"floor + system checks + structlog|{n}")
        cells += [_fmt(checked) if checked else "–", _fmt(logged) if logged else "–"]
        cells.append(f"{check:.2f}{target}")
        if floor:
            over = ours["median"] / floor["median"]
            cells.append(f"{over:.2f} (≤ 1.05: {_verdict(over <= 1.05)})")
        else:
            cells.append("not measured")
        cells += [_ratio(ours, checked), _ratio(ours, logged)]
        lines.append(f"| {n} | {' | '.join(cells)} |")
    return lines


def _ratio(ours: dict[str, float], other: dict[str, float] | None) -> str:
    return f"{ours['median'] / other['median']:.2f}" if other else "–"


def _provenance(results: dict[str, Any], key: str) -> list[str]:
    run = results.get("runs", {}).get(key)
    if not run:
        return []
    return [
        (
            f"From the run of {run['date']} at {run['revision']}, repeats {run['repeats']} "
            f"(fleet: {run['fleet_repeats']}), on {run['machine']}."
        ),
        "",
    ]


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
        *_provenance(results, "risk"),
        "Each run a fresh process: pglast's import, the SQL of every operation (written in a",
        "read-only transaction), the parse, the catalog snapshot (benchmarks/risk.py). Nothing",
        "runs when nothing is pending.",
        "",
        f"| median (min–max) | target ≤ {data['target_s']:g} s |",
        "|---|---|",
        f"| {_fmt(seconds)} | {_verdict(seconds['median'] <= data['target_s'])} |",
    ]


def _deploy(results: dict[str, Any]) -> list[str]:
    if "deploy" not in results:  # results.json from before this scenario existed
        return []
    data = results["deploy"]
    wall, cpu, target = data["wall"], data["cpu"], data["target"]
    title = (
        f"## 7. First deploy of {data['project']} ({data['migrations']} migration files) "
        "on an empty PostgreSQL (seconds)"
    )
    met = _verdict(data["ratio_wall"] <= target)
    return [
        "",
        title,
        "",
        *_provenance(results, "deploy"),
        "`wagtail start`'s site; `manage.py migrate -v0` against `django-entrypoint` with",
        "ENTRYPOINT_STEPS=migrate (lock, lock analysis, apply), each on a new database, in",
        f"{data['rounds']} interleaved rounds (benchmarks/deploy.py). CPU: user + system.",
        "",
        "| | manage.py migrate | django-entrypoint | ratio | target |",
        "|---|---|---|---|---|",
        (
            f"| wall | {_fmt(wall['django'])} | {_fmt(wall['entrypoint'])} | "
            f"{data['ratio_wall']:.2f} | ≤ {target:.2f}: {met} |"
        ),
        (
            f"| CPU | {_fmt(cpu['django'])} | {_fmt(cpu['entrypoint'])} | "
            f"{data['ratio_cpu']:.2f} | |"
        ),
    ]


def _schema(results: dict[str, Any]) -> list[str]:
    if "schema" not in results:  # results.json from before this scenario existed
        return []
    data = results["schema"]
    warn, off = data["start_warn_s"], data["start_off_s"]
    added = warn["median"] - off["median"]
    target = data["target_s"]
    verdicts = (
        f"check {_verdict(data['check_s']['median'] <= target)}, start {_verdict(added <= target)}"
    )
    return [
        "",
        f"## 8. Schema check on {data['models']} models (seconds)",
        "",
        *_provenance(results, "schema"),
        "The check alone (a fresh process, the connection open; benchmarks/schema.py), and the",
        "steady-state start (wait, migrate, exec) with `ENTRYPOINT_SCHEMA_CHECK=warn` against",
        "`off`, in interleaved rounds.",
        "",
        f"| check alone | start, warn | start, off | added | target ≤ {target * 1000:g} ms |",
        "|---|---|---|---|---|",
        f"| {_fmt(data['check_s'])} | {_fmt(warn)} | {_fmt(off)} | {added:.3f} | {verdicts} |",
    ]


def _slots(results: dict[str, Any]) -> list[str]:
    if "slots" not in results:  # results.json from before this scenario existed
        return []
    data = results["slots"]
    lines = [
        "",
        f"## 9. A fleet of {data['replicas']} against {data['slots']} connection slots",
        "",
        *_provenance(results, "slots"),
        f"{data['replicas']} replicas (wait, migrate) start together on an empty database of a",
        f"generated project ({data['migrations']} migrations, plus Django's auth and",
        "contenttypes), as a role allowed that many connections (`CONNECTION LIMIT`, not a",
        "superuser), beside the same fleet with slots to spare (the server has 400). Seconds,",
        f"median (min–max) over {data['rounds']} interleaved rounds (`--slots-repeats`); CPU:",
        "user + system of every replica (benchmarks/bench.py).",
        "",
        "| | failures per round | wall | fleet CPU | target: 0 failures |",
        "|---|---|---|---|---|",
    ]
    for name in (f"{data['slots']} slots", "slots to spare"):
        row = data[name]
        failures = row["failures"]
        lines.append(
            f"| {name} | {', '.join(map(str, failures))} | {_fmt(row['seconds'])} | "
            f"{_fmt(row['cpu_s'])} | {_verdict(not any(failures))} |"
        )
    return lines


def write(results: dict[str, Any], markdown: Path, picture: Path) -> None:
    steady = _steady(results)
    head = [
        "# Benchmark results",
        "",
        f"Machine: {results['machine']}.",
        (
            f"Repeats: {results['repeats']} (fleet: {results['fleet_repeats']}). "
            "Written by `benchmarks/run`; do not edit by hand. A section from a later run of "
            "some scenarios (`--only`) says which run it comes from."
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
        + _deploy(results)
        + _schema(results)
        + _slots(results)
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
    for tool in (
        "django-entrypoint",
        "manage.py migrate --check",
        "floor",
        "floor + system checks",
        "floor + system checks + structlog",
    ):
        if all(f"{tool}|{n}" in graph for n in gsizes):
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
