"""The row gate stops what it exists to stop (issue 26): each case the issue found let through.

tests/projects/gated at 0001 on tables of 50,000 analysed rows (a plain table with an index, a
partitioned one, one to attach, a materialized view), the gate at 1,000 rows. Its 0002-0005 only
change metadata and must pass; each of 0006-0021 holds a lock that blocks the app's writes while
it rewrites or scans one of those tables, and must be named in the refusal.
"""

from __future__ import annotations

import psycopg
import pytest

from tests.cli import migrate_env, run_cli
from tests.services import Postgres
from tests.watch import applied, recorded

GATE = {"ENTRYPOINT_MIGRATE_MAX_BLOCKING_ROWS": "1000", "TESTPROJ_GATED": "1"}
ROWS = 50_000
CONTROLS = [
    "0002_varchar_longer",
    "0003_numeric_digits",
    "0004_constant_default",
    "0005_set_default",
]
# Each refused migration and the table its refusal names.
REFUSED = {
    "0006_timestamp": "gated_item",
    "0007_varbit": "gated_item",
    "0008_collation": "gated_item",
    "0009_partition_index": "gated_part",
    "0010_partition_default": "gated_part",
    "0011_partition_not_null": "gated_part",
    "0012_attach": "gated_loose",
    "0013_if_not_exists": "gated_loose",
    "0014_rename_sql": "gated_moved",
    "0015_not_ascii": "gated_item",
    "0016_update_all": "gated_item",
    "0017_for_update": "gated_item",
    "0018_cluster": "gated_item",
    "0019_reindex": "gated_item",
    "0020_refresh": "gated_view",
    "0021_rename_model": "gated_thing",
}
FILL = f"""
INSERT INTO gated_item (count, label, tag, price, stamp, mask)
    SELECT g, 'item ' || g, 'tag ' || g, g, now(), B'101' FROM generate_series(1, {ROWS}) g;
INSERT INTO gated_part SELECT g, g FROM generate_series(1, {ROWS}) g;
INSERT INTO gated_loose SELECT g, g FROM generate_series(50001, {50_000 + ROWS}) g;
REFRESH MATERIALIZED VIEW gated_view;
ANALYZE gated_item; ANALYZE gated_part_1; ANALYZE gated_part_2; ANALYZE gated_loose;
ANALYZE gated_view;
"""


@pytest.fixture(scope="module")
def template(pg: Postgres) -> str:
    name = pg.create_database()
    url = pg.url(name)
    result = run_cli(env=migrate_env(url, ENTRYPOINT_MIGRATE_TARGETS="gated 0001", **GATE))
    assert result.returncode == 0, result.stderr
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(FILL.encode())
    return name


def test_each_case_is_refused_naming_its_culprit(pg: Postgres, template: str) -> None:
    db = pg.create_database(template)
    before = recorded(pg, db)
    result = run_cli(env=migrate_env(pg.url(db), **GATE))
    assert result.returncode == 78, result.stderr
    error = result.last()["error"]
    problems = {
        p.split()[0].removeprefix("gated."): p for p in error.split("nothing applied: ")[1:]
    }
    assert sorted(problems) == sorted(REFUSED)  # the controls pass
    for name, table in REFUSED.items():
        assert f" on {table} while it " in problems[name], problems[name]
    assert recorded(pg, db) == before


def test_what_only_changes_metadata_passes(pg: Postgres, template: str) -> None:
    db = pg.create_database(template)
    env = migrate_env(pg.url(db), ENTRYPOINT_MIGRATE_TARGETS=f"gated {CONTROLS[-1]}", **GATE)
    result = run_cli(env=env)
    assert result.returncode == 0, result.stderr
    assert [name for app, name in applied(result) if app == "gated"] == CONTROLS
