"""The safer form of each blocking statement, as operators read it in the plan and the refusal."""

CREATE_INDEX = (
    "build the index with AddIndexConcurrently (CREATE INDEX CONCURRENTLY) in a migration with "
    "atomic = False: the app keeps writing while it builds"
)
UNIQUE_CONSTRAINT = (
    "CREATE UNIQUE INDEX CONCURRENTLY first (atomic = False), then ADD CONSTRAINT ... USING INDEX"
)
VALIDATE_LATER = (
    "add the constraint NOT VALID, then VALIDATE CONSTRAINT in a later migration: "
    "validating takes SHARE UPDATE EXCLUSIVE, which lets the app read and write"
)
NOT_NULL = (
    "add CHECK (column IS NOT NULL) NOT VALID, VALIDATE CONSTRAINT in a later migration, then "
    "SET NOT NULL: PostgreSQL 12+ skips the scan when a valid CHECK proves it"
)
RETYPE = (
    "this type change rewrites the table under ACCESS EXCLUSIVE: add a new column, backfill it "
    "in batches, then switch over (or choose a binary-coercible type: varchar(n) to a longer "
    "varchar or to text)"
)
VOLATILE_DEFAULT = (
    "a volatile default rewrites the table: add the column without it (or with a constant "
    "default), then backfill in batches"
)
REWRITE = (
    "this rewrites the whole table under ACCESS EXCLUSIVE: schedule it for a maintenance window"
)
REINDEX = "REINDEX ... CONCURRENTLY (outside a transaction: atomic = False) lets the app write"
REFRESH = (
    "REFRESH MATERIALIZED VIEW CONCURRENTLY (it needs a unique index on the view) lets the app "
    "read the view while it is rebuilt"
)
ALL_ROWS = (
    "this locks every row it changes until the migration commits: change them in batches, "
    "each committed on its own (a migration with atomic = False)"
)
RUN_PYTHON = "RunPython runs code: what it locks cannot be known before it runs"
