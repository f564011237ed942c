"""A careless data migration that prints the database password and URL."""

import os

from django.conf import settings
from django.db import migrations


def shout(apps, schema_editor):
    print("password:", settings.DATABASES["default"]["PASSWORD"])
    print("url:", os.environ["DATABASE_URL"])


class Migration(migrations.Migration):
    operations = [migrations.RunPython(shout, migrations.RunPython.noop)]
