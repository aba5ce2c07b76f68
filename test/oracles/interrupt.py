#!/usr/bin/env python3
"""Runs a command and sends it a signal after a delay (test/cli/test_failures.sh).

    interrupt.py SIGNAL SECONDS -- command args...

Prints one line: "signal" if the command died of SIGNAL, else "exit N" (it finished first or
died otherwise), then "after X.XXX s". The child starts with default signal dispositions
(a background job of a non-interactive shell would ignore SIGINT)."""
import signal
import subprocess
import sys
import time


def main():
    sig = getattr(signal, "SIG" + sys.argv[1].upper().removeprefix("SIG"))
    delay = float(sys.argv[2])
    cmd = sys.argv[sys.argv.index("--") + 1:]
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL,
                         preexec_fn=lambda: [signal.signal(s, signal.SIG_DFL)
                                             for s in (signal.SIGINT, signal.SIGTERM)])
    time.sleep(delay)
    if p.poll() is None:
        p.send_signal(sig)
    rc = p.wait()
    took = time.monotonic() - t0
    print("%s after %.3f s" % ("signal" if rc == -sig else "exit %d" % rc, took))


if __name__ == "__main__":
    main()
