"""What each migration of a plan will lock, before it runs (PostgreSQL).

Contract: ``judge(connection, plan)`` returns, per step and per operation, a Judgement: the
effects (table, PostgreSQL lock mode, rewrites, scans, live rows and bytes, the statement), the
risk (none, low, high, unknown) and the safer forms. It writes nothing: the SQL is collected as
``sqlmigrate`` does and parsed by PostgreSQL's own parser (pglast); only the catalog is read.
Modules: collect (Django's SQL per operation), classify + alter (statements -> findings),
catalog (live sizes and column types), judge (risk), locks and advice (names and texts).
"""
