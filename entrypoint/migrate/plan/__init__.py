"""What the migrate step would do, decided before anything changes.

Promises: ``graph`` resolves targets and plans against Django's migration graph (conflicts and
an inconsistent history refused), ``phases`` trims the plan to a deploy phase, ``preflight``
refuses a rollback that would stop half-way (78), ``risk`` says what each operation will lock
on how big a table and refuses a plan over the row gate (78). Reads the database; never writes
to it.
"""
