"""A seed data migration for the network-cut and fence tests (tests/test_netcut.py,
tests/test_fence_mysql.py).

0002 inserts its row, then, in a second operation, pauses for SEEDED_SECONDS the way
SEEDED_PAUSE says: ``python`` (time.sleep inside RunPython, never touching the database),
``server`` (pg_sleep, or SLEEP on MySQL, on the server) or ``between`` (after 0002 is applied
and before 0003 starts: see apps.py). ``before_index`` pauses before shop 0002's AddIndex
instead, and SEEDED_NO_KEEPALIVE silences the lock's keepalive (apps.py). 0003 inserts a
second row. Each row must exist exactly once, whatever happens to the replicas.
"""
