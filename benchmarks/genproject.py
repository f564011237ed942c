"""Generate a Django project with a chosen number of migrations spread over several apps."""

from __future__ import annotations

from pathlib import Path

SETTINGS = """\
import os

import dj_database_url

SECRET_KEY = "benchmark"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "entrypoint",
    "djk8s",
{apps}
]
DATABASES = {{"default": dj_database_url.parse(os.environ["DATABASE_URL"])}}
"""

INITIAL = """\
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel(
            name="Thing",
            fields=[
                ("id", models.AutoField(auto_created=True, primary_key=True, serialize=False,
                                        verbose_name="ID")),
            ],
        ),
    ]
"""

MODELS = "from django.db import models\n\n\nclass Thing(models.Model):\n"

ADD_FIELD = """\
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("{app}", "{previous}")]
    operations = [migrations.AddField("thing", "f{n:04d}", models.IntegerField(default={n}))]
"""


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def generate(root: Path, *, migrations: int, apps: int = 10) -> Path:
    """Write project ``benchproj`` under root; return root (to put on PYTHONPATH)."""
    labels = [f"app{i:02d}" for i in range(apps)]
    _write(root / "benchproj" / "__init__.py", "")
    app_lines = "\n".join(f'    "{label}",' for label in labels)
    _write(root / "benchproj" / "settings.py", SETTINGS.format(apps=app_lines))
    for index, label in enumerate(labels):
        count = migrations // apps + (1 if index < migrations % apps else 0)
        package = root / label
        _write(package / "__init__.py", "")
        fields = "".join(
            f"    f{n:04d} = models.IntegerField(default={n})\n" for n in range(1, count)
        )
        body = fields or "    pass\n"
        _write(package / "models.py", MODELS + body)
        _write(package / "migrations" / "__init__.py", "")
        _write(package / "migrations" / "0001_initial.py", INITIAL)
        previous = "0001_initial"
        for n in range(1, count):
            name = f"{n + 1:04d}_f{n:04d}"
            _write(
                package / "migrations" / f"{name}.py",
                ADD_FIELD.format(app=label, previous=previous, n=n),
            )
            previous = name
    return root
