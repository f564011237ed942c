"""Differential test: squawk (squawk-cli, a linter of SQL text) and our analysis on the same SQL.

Every statement squawk flags for a lock, rewrite or scan rule must be ``high`` or ``low`` here.
Where the two differ in substance, the statement is listed below with why; the lists are compared
exactly, so a change on either side shows up here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests import risk_tables
from tests.risk_tables import ours
from tests.services import Postgres

# squawk's rules about what a statement locks, rewrites or scans (not style, naming or
# compatibility rules, nor the "set a lock_timeout first" reminders on every statement).
LOCK_RULES = {
    "require-concurrent-index-creation",
    "require-concurrent-index-deletion",
    "changing-column-type",
    "adding-not-nullable-field",
    "setting-not-nullable-field",
    "adding-required-field",
    "adding-foreign-key-constraint",
    "constraint-missing-not-valid",
    "adding-field-with-default",
    "adding-serial-primary-key-field",
    "disallowed-unique-constraint",
}
EXTRA = [
    ('CREATE INDEX CONCURRENTLY "i_concurrent" ON "big_item" ("count")', "none"),
    ("DROP INDEX big_item_label_key", "low"),
]
CORPUS = [sql for sql, _ in risk_tables.BASIC + EXTRA]

# squawk flags these as rewriting or validating; PostgreSQL does neither, so they are "low"
# here (a brief ACCESS EXCLUSIVE or SHARE ROW EXCLUSIVE), checked against pg_locks, the filenode
# and the scan counts in tests/test_risk_locks.py.
FLAGGED_BUT_BRIEF = {
    # binary-coercible type changes: no row is rewritten (PostgreSQL's ALTER TABLE notes)
    "ALTER TABLE big_item ALTER COLUMN label TYPE varchar(100)": "changing-column-type",
    "ALTER TABLE big_item ALTER COLUMN label TYPE text": "changing-column-type",
    "ALTER TABLE big_item ALTER COLUMN amount TYPE numeric(12, 2)": "changing-column-type",
    # a new column is all NULL: PostgreSQL skips the foreign key's validation scan
    (
        'ALTER TABLE "big_item" ADD COLUMN "owner2_id" integer NULL CONSTRAINT "f2" '
        'REFERENCES "big_owner"("id") DEFERRABLE INITIALLY DEFERRED'
    ): "adding-foreign-key-constraint",
}
# squawk asks for DROP INDEX CONCURRENTLY; here it is the brief ACCESS EXCLUSIVE it is: low.
AGREED_BRIEF = {"DROP INDEX big_item_label_key": "require-concurrent-index-deletion"}
HIGH_BUT_NOT_FLAGGED = {
    # squawk has no rule for row locks: every row stays locked until the migration commits
    "UPDATE big_item SET label = 'x'",
    # serial adds a nextval() default, computed per row: PostgreSQL rewrites the table (its
    # filenode changes, see tests/test_risk_locks.py); squawk flags serial only as a primary key
    "ALTER TABLE big_item ADD COLUMN serial_id serial",
}


@pytest.fixture(scope="module")
def db(pg: Postgres) -> str:
    url = risk_tables.create(pg)
    import psycopg  # noqa: PLC0415

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE UNIQUE INDEX big_item_label_key ON big_item (label)")
    return url


def squawk() -> str:
    found = shutil.which("squawk", path=str(Path(sys.executable).parent)) or shutil.which("squawk")
    assert found, "squawk-cli is a test dependency: pip install -e '.[test]'"
    return found


def squawk_rules(tmp_path: Path) -> dict[str, set[str]]:
    """squawk's rule names per statement, each statement in a file of its own."""
    files = {}
    for i, sql in enumerate(CORPUS):
        path = tmp_path / f"{i:03}.sql"
        path.write_text(sql + ";\n")
        files[str(path)] = sql
    proc = subprocess.run(
        [squawk(), "--reporter", "json", "--pg-version", "15.0", *files],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode in {0, 1}, proc.stderr  # 1: it found something
    rules: dict[str, set[str]] = {sql: set() for sql in CORPUS}
    for violation in json.loads(proc.stdout):
        rules[files[violation["file"]]].add(violation["rule_name"])
    return rules


def test_what_squawk_flags_is_high_or_low_here(db: str, tmp_path: Path) -> None:
    rules = squawk_rules(tmp_path)
    risks = {sql: ours(db, sql)[0].risk for sql in CORPUS}
    flagged = {sql for sql, found in rules.items() if found & LOCK_RULES}
    assert {sql for sql in flagged if risks[sql] not in {"high", "low"}} == set()
    # Where squawk sees a rewrite or a scan and PostgreSQL does neither:
    brief = {sql: sorted(rules[sql] & LOCK_RULES) for sql in flagged if risks[sql] == "low"}
    expected = FLAGGED_BUT_BRIEF | AGREED_BRIEF
    assert brief == {sql: [rule] for sql, rule in expected.items()}
    high = {sql for sql, risk in risks.items() if risk == "high"}
    assert high - flagged == HIGH_BUT_NOT_FLAGGED
