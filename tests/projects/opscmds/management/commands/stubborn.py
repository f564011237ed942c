"""Says it runs, then for SECONDS swallows every exception (a SIGTERM's too), then returns."""

import time

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    def add_arguments(self, parser):
        parser.add_argument("seconds", type=float)

    def handle(self, *args, **options):
        deadline = time.monotonic() + options["seconds"]
        announced = False
        while True:
            # Announced inside the try: the tests signal on it, and a stop that lands before
            # the swallowing began would escape.
            try:
                if not announced:
                    announced = True
                    self.stdout.write("stubborn running")
                if time.monotonic() >= deadline:
                    return
                time.sleep(0.05)
            except:  # noqa: E722 - the point of this command
                pass
