"""Appends 'start PID T' and, SECONDS later, 'end PID T' to PATH: overlapping runs show."""

import os
import time

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("seconds", type=float)

    def handle(self, *args, **options):
        def mark(what):
            with open(options["path"], "a") as f:
                f.write(f"{what} {os.getpid()} {time.time()}\n")

        mark("start")
        time.sleep(options["seconds"])
        mark("end")
