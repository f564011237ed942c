"""The cross-process migration lock: one replica migrates, the others wait.

Promises: ``waiting.migration_lock`` holds the database's lock for a block (PostgreSQL advisory
lock, MySQL GET_LOCK or a file lock for SQLite), or raises LockTimeout (75) at the deadline;
the ``fence`` keeps a replica that lost the lock from overlapping the next holder's work, and
the ``keepalive`` notices a lost lock within seconds; ``state`` tells who holds the lock and
the fence without taking either. Needs: a configured Django connection.
"""
