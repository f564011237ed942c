from django.db import migrations


def seed(apps, schema_editor):
    product = apps.get_model("shop", "Product")
    product.objects.using(schema_editor.connection.alias).create(name="seed")


class Migration(migrations.Migration):
    dependencies = [("shop", "0002_order_slow")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
