from django.db import migrations

from sideeffect.operations import InsertMark


class Migration(migrations.Migration):
    dependencies = [("sideeffect", "0002_separate")]
    operations = [InsertMark("custom")]
