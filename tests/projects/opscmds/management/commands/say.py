"""Writes its words, joined by ' | ', to stdout (or stderr with --err)."""

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    def add_arguments(self, parser):
        parser.add_argument("words", nargs="*")
        parser.add_argument("--err", action="store_true")

    def handle(self, *args, **options):
        stream = self.stderr if options["err"] else self.stdout
        stream.write(" | ".join(options["words"]))
