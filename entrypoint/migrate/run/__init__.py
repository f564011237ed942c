"""Applying a plan under the lock, through Django's own executor.

Promises: each migration's work and its record commit together inside the fence (``guard``,
``editor``); a statement waits for a table lock only briefly and the migration is retried
(``table_locks``, ``retries``); every migration is reported (``progress``); a replica that lost
the lock ends its step within seconds, whatever the migration's code does (``abandon``).
Needs: the lock held.
"""
