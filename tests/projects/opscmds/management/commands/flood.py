"""Prints and logs a megabyte at once, in every way a project may (print, write, logging)."""

import logging
import os
import sys

from django.core.management.base import BaseCommand

MEGABYTE = 1 << 20


def _fail():
    raise ValueError("d" * MEGABYTE)


class Command(BaseCommand):
    def handle(self, *args, **options):
        secret = os.environ["DJANGO_ADMIN_PASSWORD"]
        # The secret straddles the 8 KiB cut: it must be masked before the line is cut.
        print("a" * 8190 + secret + "a" * MEGABYTE)
        sys.stdout.write("b" * MEGABYTE)  # no newline for a megabyte, then one
        sys.stdout.write("b" * MEGABYTE + "\nafter the flood\n")
        print("é" * MEGABYTE, file=sys.stderr)  # two bytes a character: never cut in half
        logging.getLogger("flood").warning("c" * MEGABYTE)
        try:
            _fail()
        except ValueError:
            logging.getLogger("flood").exception("e" * 10)
        self.stdout.write("f" * MEGABYTE)
