"""The manage step: Django management commands from ENTRYPOINT_MANAGE, run in-process (step)."""
