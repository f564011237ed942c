"""The manage step: the ENTRYPOINT_MANAGE management commands, in order, in this process.

Promises: unknown commands are refused (78) before any step runs; the first that fails stops
the step (70, naming it); with ENTRYPOINT_MANAGE_LOCKED they run under the migration lock and
its guard. Needs: Django set up, its settings (``config.ManageSettings``).
"""
