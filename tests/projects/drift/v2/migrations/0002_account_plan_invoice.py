import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("drift", "0001_initial")]
    operations = [
        migrations.AddField(
            model_name="account",
            name="plan",
            field=models.CharField(default="free", max_length=10),
        ),
        migrations.CreateModel(
            name="Invoice",
            fields=[
                (
                    "id",
                    models.AutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("total", models.IntegerField()),
                (
                    "account",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, to="drift.account"
                    ),
                ),
            ],
        ),
    ]
