"""An old data migration's habit: every step in ``try: ... except: pass``. It swallows a
SIGTERM's interruption too, and goes on; SWALLOW_SECONDS says for how long."""

import time

from django.conf import settings
from django.db import migrations


def careless(apps, schema_editor):
    apps.get_model("swallow", "Row").objects.create(note="once")
    deadline = time.monotonic() + getattr(settings, "SWALLOW_SECONDS", 0)
    announced = False
    while True:
        # The announcement and the clock are inside the try: the tests signal on the
        # announcement, and a stop that lands before the swallowing began would escape.
        try:
            if not announced:
                announced = True
                print("careless migration running")
            if time.monotonic() >= deadline:
                return
            time.sleep(0.05)
        except:  # noqa: E722 - the point of this migration
            pass


class Migration(migrations.Migration):
    dependencies = [("swallow", "0001_initial")]
    operations = [migrations.RunPython(careless, migrations.RunPython.noop)]
