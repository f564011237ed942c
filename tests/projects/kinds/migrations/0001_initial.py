import uuid

import django.db.models.deletion
import django.db.models.functions.text
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Legacy",
            fields=[
                (
                    "id",
                    models.AutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("code", models.CharField(max_length=10)),
            ],
            options={
                "db_table": "legacy_codes",
                "managed": False,
            },
        ),
        migrations.CreateModel(
            name="Place",
            fields=[
                (
                    "id",
                    models.AutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=50)),
                (
                    "lowered",
                    models.GeneratedField(
                        db_persist=True,
                        expression=django.db.models.functions.text.Lower("name"),
                        output_field=models.CharField(max_length=50),
                    ),
                ),
                ("opened", models.DateField(null=True)),
                ("closes", models.TimeField(null=True)),
                ("rating", models.DecimalField(db_default=0, decimal_places=2, max_digits=4)),
                ("neighbours", models.ManyToManyField(to="kinds.place")),
            ],
        ),
        migrations.CreateModel(
            name="Note",
            fields=[
                (
                    "id",
                    models.AutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("object_id", models.PositiveIntegerField()),
                ("text", models.TextField()),
                (
                    "content_type",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, to="contenttypes.contenttype"
                    ),
                ),
            ],
        ),
        migrations.CreateModel(
            name="Restaurant",
            fields=[
                (
                    "place_ptr",
                    models.OneToOneField(
                        auto_created=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        parent_link=True,
                        primary_key=True,
                        serialize=False,
                        to="kinds.place",
                    ),
                ),
                ("serves_pizza", models.BooleanField(default=False)),
            ],
            bases=("kinds.place",),
        ),
        migrations.CreateModel(
            name="Document",
            fields=[
                ("key", models.UUIDField(default=uuid.uuid4, primary_key=True, serialize=False)),
                ("body", models.JSONField(default=dict)),
                ("blob", models.BinaryField(null=True)),
                ("size", models.PositiveBigIntegerField(default=0)),
                ("ratio", models.FloatField(default=0)),
                (
                    "owner",
                    models.OneToOneField(
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "places",
                    models.ManyToManyField(db_table="kinds_document_place_links", to="kinds.place"),
                ),
            ],
            options={
                "db_table": "kinds_docs",
            },
        ),
        migrations.CreateModel(
            name="OpenPlace",
            fields=[],
            options={
                "proxy": True,
                "indexes": [],
                "constraints": [],
            },
            bases=("kinds.place",),
        ),
        migrations.CreateModel(
            name="Visit",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("stayed", models.DurationField()),
                ("address", models.GenericIPAddressField(null=True)),
                (
                    "place",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, to="kinds.place"
                    ),
                ),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, to=settings.AUTH_USER_MODEL
                    ),
                ),
            ],
        ),
        migrations.AddField(
            model_name="place",
            name="visitors",
            field=models.ManyToManyField(through="kinds.Visit", to=settings.AUTH_USER_MODEL),
        ),
    ]
