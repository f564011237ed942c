import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    """A foreign key: both tables locked; its index is built under SHARE."""

    dependencies = [("big", "0005_label_not_null")]
    operations = [
        migrations.AddField(
            "item",
            "owner",
            models.ForeignKey(
                null=True, on_delete=django.db.models.deletion.CASCADE, to="big.owner"
            ),
        ),
    ]
