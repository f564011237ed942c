from django.db import migrations, models


class Migration(migrations.Migration):
    """Applied before the tests fill big_item; the migrations after it are the plan judged."""

    initial = True
    dependencies: list[tuple[str, str]] = []
    operations = [
        migrations.CreateModel(
            name="Owner",
            fields=[
                ("id", models.AutoField(auto_created=True, primary_key=True, serialize=False)),
                ("name", models.CharField(max_length=50)),
            ],
        ),
        migrations.CreateModel(
            name="Item",
            fields=[
                ("id", models.AutoField(auto_created=True, primary_key=True, serialize=False)),
                ("count", models.IntegerField()),
                ("label", models.CharField(max_length=50, null=True)),
            ],
        ),
    ]
