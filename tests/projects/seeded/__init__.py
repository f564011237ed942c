"""A seed data migration for the network-cut tests (tests/test_netcut.py).

0002 inserts its row, then pauses for SEEDED_SECONDS the way SEEDED_PAUSE says: ``python``
(time.sleep inside RunPython, never touching the database), ``server`` (pg_sleep on the
server) or ``between`` (after 0002 is applied and before 0003 starts: see apps.py). 0003
inserts a second row. Each row must exist exactly once, whatever happens to the replicas.
"""
