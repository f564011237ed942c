"""A careless data migration that prints the database password and URL."""

import os
import warnings

from django.conf import settings
from django.db import migrations


def shout(apps, schema_editor):
    print("password:", settings.DATABASES["default"]["PASSWORD"])
    print("url:", os.environ["DATABASE_URL"])
    warnings.warn("careless data migration", RuntimeWarning, stacklevel=1)


class Migration(migrations.Migration):
    operations = [migrations.RunPython(shout, migrations.RunPython.noop)]
