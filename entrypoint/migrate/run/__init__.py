"""Carrying a plan out under the lock, through Django's own executor.

Promises: ``guard.locked`` takes the lock and passes the fence before anything is planned under
it; ``apply`` makes the plan again there and carries it out; each migration's work and its
record commit together inside the fence (``guard``, ``editor``); a statement waits for a table
lock only briefly and the migration is retried on a plan made once more (``table_locks``,
``retries``); every migration is reported (``progress``); a replica that lost the lock ends its
step within seconds, whatever the migration's code does (``abandon``, ``outcome``).
"""
