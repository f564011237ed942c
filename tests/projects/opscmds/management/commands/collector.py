"""Says whether Python's cyclic garbage collector is on while the steps run."""

import gc

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    def handle(self, *args, **options):
        self.stdout.write(f"collector enabled={gc.isenabled()}")
