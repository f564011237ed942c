"""The migrate step: every alias to its targets, each migration applied exactly once.

Promises: however many replicas start at once, ``step`` checks the files without a lock
(nothing to do means no wait, no graph), otherwise makes the plan (``plan.make``), takes the
``lock``, passes the fence and applies under the guard (``run``); ``report`` prints the plan as
JSON without a lock, ``status`` who holds the lock and the fence and what is pending, read
only. Needs: Django set up, and its settings (``config.MigrateSettings``, which also carries
lockedmigrate's flags).
"""
