"""testproj plus more apps with cross-app dependencies and an optionally slow migration.

SLOW_MIGRATION_SECONDS makes shop 0002 (and pgonly 0002) sleep inside the migration, so only
the tests that want a long migration pay for one. TESTPROJ_PG_APPS adds a PostgreSQL-only app
that builds an index CONCURRENTLY; TESTPROJ_CONFLICT adds an app with two leaf migrations;
TESTPROJ_ORPHAN one whose migration depends on a migration that does not exist;
TESTPROJ_LEDGER adds a data migration that inserts one row, then sleeps LEDGER_SECONDS on the server;
TESTPROJ_TALLY adds a data migration that updates a row, then a non-atomic ALTER.
TESTPROJ_ONEWAY adds an app whose data migration has no reverse_code.
TESTPROJ_BIG adds the app whose pending migrations the risk analysis judges (tests/test_risk*.py);
TESTPROJ_METASQL one whose RunSQL holds psql meta-commands, which PostgreSQL's parser rejects.
TESTPROJ_SEEDED adds a seed data migration that pauses as SEEDED_PAUSE says (see seeded/).
TESTPROJ_GATED adds the app whose migrations the row gate must refuse (tests/test_risk_gate.py).
TESTPROJ_SWALLOW adds a data migration that swallows every exception for SWALLOW_SECONDS.
"""

import os

from testproj.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "blog", "shop"]  # noqa: F405
if os.environ.get("TESTPROJ_PG_APPS"):
    INSTALLED_APPS.append("pgonly")
if os.environ.get("TESTPROJ_CONFLICT"):
    INSTALLED_APPS.append("conflicted")
if os.environ.get("TESTPROJ_ORPHAN"):
    INSTALLED_APPS.append("orphaned")
SLOW_MIGRATION_SECONDS = float(os.environ.get("SLOW_MIGRATION_SECONDS", "0"))
if os.environ.get("TESTPROJ_LEDGER"):
    INSTALLED_APPS.append("ledger")
LEDGER_SECONDS = float(os.environ.get("LEDGER_SECONDS", "0"))
if os.environ.get("TESTPROJ_TALLY"):
    INSTALLED_APPS.append("tally")
if os.environ.get("TESTPROJ_ONEWAY"):
    INSTALLED_APPS.append("oneway")
if os.environ.get("TESTPROJ_BIG"):
    # BTreeIndex needs the app from Django 6.1 on (postgres.E005)
    INSTALLED_APPS.extend(["django.contrib.postgres", "big"])
if os.environ.get("TESTPROJ_METASQL"):
    INSTALLED_APPS.append("metasql")
if os.environ.get("TESTPROJ_SEEDED"):
    INSTALLED_APPS.append("seeded")
if os.environ.get("TESTPROJ_GATED"):
    INSTALLED_APPS.append("gated")
if os.environ.get("TESTPROJ_SWALLOW"):
    INSTALLED_APPS.append("swallow")
SWALLOW_SECONDS = float(os.environ.get("SWALLOW_SECONDS", "0"))
