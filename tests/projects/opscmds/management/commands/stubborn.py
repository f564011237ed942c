"""Says it runs, then for SECONDS swallows every exception (a SIGTERM's too), then returns."""

import time

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    def add_arguments(self, parser):
        parser.add_argument("seconds", type=float)

    def handle(self, *args, **options):
        self.stdout.write("stubborn running")
        deadline = time.monotonic() + options["seconds"]
        while time.monotonic() < deadline:
            try:  # noqa: SIM105 - the bare except is what careless commands write
                time.sleep(0.05)
            except:  # noqa: E722, PERF203 - the point of this command
                pass
