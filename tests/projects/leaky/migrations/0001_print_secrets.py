"""A careless data migration that leaks every secret it can reach, in every way it can."""

import logging
import os
import re
import sys
import urllib.parse
import warnings

from django.conf import settings
from django.db import migrations


def shout(apps, schema_editor):
    password = settings.DATABASES["default"]["PASSWORD"]
    print("password:", password)
    print("url:", os.environ["DATABASE_URL"])
    print("direct url:", os.environ.get("ENTRYPOINT_MIGRATE_DATABASE_URL", ""))
    print("plus-encoded:", urllib.parse.quote_plus(password))
    encoded = urllib.parse.quote(password, safe="")
    print("lower-case hex:", re.sub("%[0-9A-F]{2}", lambda m: m[0].lower(), encoded))
    print("admin password:", os.environ.get("DJANGO_ADMIN_PASSWORD", ""))
    sys.stderr.write(f"stderr: {urllib.parse.quote(password)}\n")
    sys.stderr.write("stderr without a newline at the end")
    logging.getLogger("leaky").warning("connecting with %s", password)
    try:
        int(os.environ["DATABASE_URL"])  # ValueError quoting the DSN
    except ValueError:
        logging.getLogger("leaky.deep").exception("failed")
    warnings.warn("careless data migration", RuntimeWarning, stacklevel=1)


class Migration(migrations.Migration):
    operations = [migrations.RunPython(shout, migrations.RunPython.noop)]
