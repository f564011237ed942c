"""Applying a plan under the lock, through Django's own executor.

Promises: each migration's work and its record commit together inside the fence (``guard``,
``editor``); a statement waits for a table lock only briefly and the migration is retried
(``table_locks``, ``retries``); every migration is reported (``progress``). Needs: the lock held.
"""
