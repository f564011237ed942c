"""Asks for confirmation unless --noinput, as collectstatic and flush do."""

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    def add_arguments(self, parser):
        parser.add_argument("--noinput", "--no-input", action="store_false", dest="interactive")

    def handle(self, *args, **options):
        if options["interactive"]:
            input("Type 'yes' to continue: ")
        self.stdout.write(f"interactive={options['interactive']}")
