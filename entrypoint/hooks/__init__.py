"""The hooks step: the project's own executables, run in version order before the server starts.

Promises: each hook runs with a timeout, its output as events read in bounded chunks, and
without the step-only credentials; a failing one stops the start (exit 70); one that someone
other than root or the current user could have changed (the file, the directory, any directory
on the way to its target) is refused (exit 78) before anything runs and again as it starts,
and what runs is the file then checked (``safety``); whatever a hook leaves running is ended
when it exits (``reaper``). Needs: its settings (``config.HooksSettings``), Linux's /proc.
"""
