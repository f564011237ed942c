import os

from django.apps import AppConfig
from django.core import checks


def _counted_warning(**kwargs):
    # Lets the tests count how many times the system checks ran in one process.
    if os.environ.get("TESTPROJ_CHECK_WARNING"):
        return [checks.Warning("test warning", id="blog.W001")]
    return []


class BlogConfig(AppConfig):
    name = "blog"

    def ready(self):
        checks.register(_counted_warning)
