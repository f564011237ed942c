from django.db import migrations


class Migration(migrations.Migration):
    dependencies: list[tuple[str, str]] = [("conflicted", "0001_initial")]
    operations: list[migrations.operations.base.Operation] = []
