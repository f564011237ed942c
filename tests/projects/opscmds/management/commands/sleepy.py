"""Sleeps SECONDS, saying nothing: long work for the heartbeat."""

import time

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    def add_arguments(self, parser):
        parser.add_argument("seconds", type=float)

    def handle(self, *args, **options):
        time.sleep(options["seconds"])
