from django.db import migrations, models


class Migration(migrations.Migration):
    """SQL beyond ASCII, then a rewriting type change."""

    dependencies = [("gated", "0014_rename_sql")]
    operations = [
        migrations.RunSQL("UPDATE gated_item SET label = 'é€' WHERE id < 0"),
        migrations.AlterField("item", "count", models.BigIntegerField()),
    ]
