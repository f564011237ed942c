from django.contrib.postgres.indexes import BTreeIndex
from django.db import models


class Owner(models.Model):
    name = models.CharField(max_length=50)


class Item(models.Model):
    """The big table: the tests fill it with 200,000 analysed rows before the plan."""

    count = models.BigIntegerField()
    label = models.CharField(max_length=50)
    note = models.TextField(null=True)  # noqa: DJ001 - the nullable AddField under test
    owner = models.ForeignKey(Owner, null=True, on_delete=models.CASCADE)

    class Meta:
        indexes = [
            models.Index(fields=["label"], name="big_item_label_idx"),
            BTreeIndex(fields=["note"], name="big_item_note_idx"),
        ]
