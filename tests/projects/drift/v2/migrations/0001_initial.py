"""v1's 0001 (drift.migrations), the same migration in this version's package."""

from importlib import import_module

Migration = import_module("drift.migrations.0001_initial").Migration
