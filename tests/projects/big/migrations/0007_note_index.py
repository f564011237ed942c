from django.contrib.postgres.indexes import BTreeIndex
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations


class Migration(migrations.Migration):
    """CREATE INDEX CONCURRENTLY: SHARE UPDATE EXCLUSIVE, the app reads and writes on."""

    atomic = False
    dependencies = [("big", "0006_owner")]
    operations = [
        AddIndexConcurrently("item", BTreeIndex(fields=["note"], name="big_item_note_idx")),
    ]
