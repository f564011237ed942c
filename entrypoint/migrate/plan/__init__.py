"""What the migrate step would do, decided before anything changes.

Promises: ``make`` makes an alias's plan, one frozen value that every reader shares (the step,
the apply, ``--plan``, ``--status``, the wait for migrations), from ``graph`` (targets resolved
against Django's migration graph, conflicts and an inconsistent history refused), ``phases``
(the plan trimmed to a deploy phase), ``preflight`` (a rollback that would stop half-way) and
``risk`` (what each operation will lock on how big a table; the row gate). ``files`` is the
steady-state check that needs no graph. Reads the database; never writes to it (what a plan
would record, the apply records under the lock).
"""
