"""A stand-in app server: prints its pid and an env var, then echoes each signal it receives."""

import os
import signal
import sys
import time


def on_signal(signum: int, _frame: object) -> None:
    # os.write, not print: a handler that interrupts print() would re-enter the buffered writer.
    os.write(1, f"signal {signal.Signals(signum).name}\n".encode())
    if signum == signal.SIGTERM:
        sys.exit(128 + signum)


for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
    signal.signal(sig, on_signal)
print(f"ready (pid: {os.getpid()}) marker={os.environ.get('MARKER', '')}", flush=True)
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    time.sleep(0.05)
sys.exit(3)
