"""How a migration and an operation are named in events, messages and documents."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.migrations import operations

if TYPE_CHECKING:
    from django.db.migrations.migration import Migration
    from django.db.migrations.operations.base import Operation


def label(migration: Migration) -> str:
    """``app.name``: ``main.0002_widget_color``."""
    return f"{migration.app_label}.{migration.name}"


def describe(operation: Operation) -> str:
    """``AddField: Add field color to widget``; a RunPython by its function's name."""
    if isinstance(operation, operations.RunPython):
        return f"RunPython({getattr(operation.code, '__name__', '?')})"
    return f"{type(operation).__name__}: {operation.describe()}"
