from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies: list[tuple[str, str]] = []
    operations = [
        migrations.CreateModel(
            "Mark",
            [
                ("id", models.AutoField(primary_key=True, serialize=False)),
                ("note", models.CharField(max_length=20)),
            ],
        )
    ]
