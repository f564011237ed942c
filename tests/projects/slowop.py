"""A migration operation that sleeps on the database server for SLOW_MIGRATION_SECONDS."""

import time

from django.conf import settings
from django.db import migrations


def _pause(apps, schema_editor):
    seconds = getattr(settings, "SLOW_MIGRATION_SECONDS", 0)
    if not seconds:
        return
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute("SELECT pg_sleep(%s)", [seconds])
    elif vendor == "mysql":
        # Not schema_editor.execute: MySQL runs RunPython in a transaction, where Django
        # refuses anything through the schema editor.
        with schema_editor.connection.cursor() as cursor:
            cursor.execute("SELECT SLEEP(%s)", [seconds])
    else:
        time.sleep(seconds)


def slow_step():
    return migrations.RunPython(_pause, migrations.RunPython.noop, elidable=False)
