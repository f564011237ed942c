"""What each migration of a plan will lock, before it runs (PostgreSQL).

Contract: ``gate.assess(connection, plan)`` returns, per step and per operation, a Judgement:
the effects (table, PostgreSQL lock mode, rewrites, scans, live rows and bytes, the statement),
the risk (none, low, high, unknown) and the safer forms; its ``refusals`` say why a plan over
the row gate must not run. It runs none of the project's code and writes nothing: every read
happens in a transaction that is READ ONLY and always rolled back (pipeline.py). One pipeline:
collect (collect.py, skip.py: Django's SQL per operation) -> parse (classify.py, alter.py,
findings.py: PostgreSQL's parser) -> judge (catalog.py: one snapshot of the catalog; judge.py)
-> refuse (gate.py). levels, locks and advice name things; levels is all a waiter imports.
"""
