from django.db import migrations


def seed_after(apps, schema_editor):
    apps.get_model("seeded", "Seed").objects.create(note="after")


class Migration(migrations.Migration):
    dependencies = [("seeded", "0002_seed")]
    operations = [migrations.RunPython(seed_after, migrations.RunPython.noop)]
