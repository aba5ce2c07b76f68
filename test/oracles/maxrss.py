#!/usr/bin/env python3
"""Runs a command and prints "exit N, max RSS M MB" (test/cli/test_failures.sh: a hostile
input must be refused without allocating what its header claims).

    maxrss.py -- command args..."""
import resource
import subprocess
import sys


def main():
    cmd = sys.argv[sys.argv.index("--") + 1:]
    rc = subprocess.call(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print("exit %d, max RSS %d MB" % (rc, kb // 1024))


if __name__ == "__main__":
    main()
