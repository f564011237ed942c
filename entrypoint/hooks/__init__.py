"""The hooks step: the project's own executables, run in version order before the server starts.

Promises: each hook runs with a timeout and its output as events, a failing one stops the start
(exit 70), and one that someone other than root or the current user could have written (the
directory too) is refused (exit 78) before anything runs. Needs: its settings
(``config.HooksSettings``).
"""
