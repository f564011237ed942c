"""The migrate step: every alias to its targets, each migration applied exactly once.

Promises: however many replicas start at once, ``step`` plans without a lock (nothing to do
means no wait), then takes the ``lock``, passes the fence, re-plans (``plan``) and applies
(``run``); ``report`` prints the plan as JSON without a lock, ``status`` who holds the lock
and the fence and what is pending, read only. Needs: Django set up, and its
settings (``config.MigrateSettings``).
"""
