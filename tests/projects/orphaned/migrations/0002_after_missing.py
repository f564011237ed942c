"""Depends on a migration that is not here: a file not copied, a branch not merged."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies: list[tuple[str, str]] = [("orphaned", "0001_initial")]
    operations: list[migrations.operations.base.Operation] = []
