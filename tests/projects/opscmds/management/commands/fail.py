"""Fails: raises CommandError, or calls sys.exit(N) with --exit N."""

import sys

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    def add_arguments(self, parser):
        parser.add_argument("--exit", type=int)

    def handle(self, *args, **options):
        if options["exit"] is not None:
            sys.exit(options["exit"])
        raise CommandError("the ops command broke")
