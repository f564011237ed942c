import os
import time

from django.db import migrations


def _sleep(seconds):
    """Sleep, or less once the file SEEDED_RELEASE names exists (a test is done with the pause)."""
    release = os.environ.get("SEEDED_RELEASE")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not (release and os.path.exists(release)):
        time.sleep(min(0.1, max(deadline - time.monotonic(), 0)))


def seed(apps, schema_editor):
    apps.get_model("seeded", "Seed").objects.create(note="once")


def pause(apps, schema_editor):
    seconds = float(os.environ.get("SEEDED_SECONDS", "0"))
    how = os.environ.get("SEEDED_PAUSE", "")
    if how == "python":
        _sleep(seconds)  # computing, or waiting on something else: not on the database
    elif how == "server" and schema_editor.connection.vendor == "mysql":
        # A cursor: MySQL's RunPython runs in a transaction, where the schema editor refuses.
        with schema_editor.connection.cursor() as cursor:
            cursor.execute("SELECT SLEEP(%s)", [seconds])
    elif how == "server":
        schema_editor.execute("SELECT pg_sleep(%s)", [seconds])


class Migration(migrations.Migration):
    dependencies = [("seeded", "0001_initial")]
    # Two operations: Django would run each in a transaction of its own on MySQL, and the row
    # would stay when the pause is interrupted; the migration must be one transaction.
    operations = [
        migrations.RunPython(seed, migrations.RunPython.noop),
        migrations.RunPython(pause, migrations.RunPython.noop),
    ]
