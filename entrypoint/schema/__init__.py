"""Whether the live schema serves this code: its models against each alias's catalog.

Promises: the models this code has (every concrete, managed model of every installed app,
auto-created many-to-many tables included; proxy, unmanaged and swapped-out models left out;
the database routers' ``allow_migrate`` decides which alias holds which, ``expected``) are
compared with the live catalog of one alias (``catalog``), read only, in at most two catalog
queries per alias whatever the number of models (PostgreSQL, MySQL/MariaDB, SQLite; other
engines are not checked). ``check`` names each problem (``missing_table``, ``missing_column``,
``not_null_without_default``, ``type_mismatch``) with its model, table and column, for
``--status`` and for the steps, which warn or refuse (exit 78) as ENTRYPOINT_SCHEMA_CHECK says
(``config``). Needs: Django set up; nothing above it in the package.
"""
