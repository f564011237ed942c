"""The Django app's side: ``wait4db``, ``lockedmigrate`` and ``ensureadmin`` as management commands.

Promises: each command is a thin wrapper (``base.StepCommand``) over the same functions the CLI
runs, with the same settings, events and exit codes. Needs: ``entrypoint`` in INSTALLED_APPS.
"""
