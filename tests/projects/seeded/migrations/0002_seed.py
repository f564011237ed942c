import os
import time

from django.db import migrations


def _sleep(seconds):
    """Sleep, or less once the file SEEDED_RELEASE names exists (a test is done with the pause)."""
    release = os.environ.get("SEEDED_RELEASE")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not (release and os.path.exists(release)):
        time.sleep(min(0.1, max(deadline - time.monotonic(), 0)))


def seed_then_pause(apps, schema_editor):
    apps.get_model("seeded", "Seed").objects.create(note="once")
    seconds = float(os.environ.get("SEEDED_SECONDS", "0"))
    pause = os.environ.get("SEEDED_PAUSE", "")
    if pause == "python":
        _sleep(seconds)  # computing, or waiting on something else: not on the database
    elif pause == "server":
        schema_editor.execute("SELECT pg_sleep(%s)", [seconds])


class Migration(migrations.Migration):
    dependencies = [("seeded", "0001_initial")]
    operations = [migrations.RunPython(seed_then_pause, migrations.RunPython.noop)]
