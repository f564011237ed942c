from django.db import migrations, models


class Migration(migrations.Migration):
    """CREATE INDEX: SHARE (writes wait) for the whole build."""

    dependencies = [("big", "0001_initial")]
    operations = [
        migrations.AddIndex("item", models.Index(fields=["label"], name="big_item_label_idx")),
    ]
