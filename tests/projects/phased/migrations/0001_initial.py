from django.db import migrations, models


class Migration(migrations.Migration):
    """No Safe marker: django-safemigrate counts it as Safe.always()."""

    initial = True
    dependencies: list[tuple[str, str]] = []
    operations = [
        migrations.CreateModel(
            name="Widget",
            fields=[
                ("id", models.AutoField(auto_created=True, primary_key=True, serialize=False)),
                ("name", models.CharField(max_length=50)),
                ("legacy_code", models.CharField(max_length=20, default="")),
            ],
        ),
    ]
