#!/usr/bin/env python3
"""A stand-in server that ignores the clean-stop signal (SIGUSR1), for the grace-period
test only: it works in BASE, holds the fcntl lock on BASE/run/seekdb.pid (with its pid
in it, as seekdb does) and listens on PORT, then waits to be killed.

    ignore_usr1.py BASE PORT
"""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import sys
import time


def main() -> None:
    base, port = sys.argv[1], int(sys.argv[2])
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    os.makedirs(os.path.join(base, "run"), exist_ok=True)
    os.chdir(base)
    pid_file = os.open("run/seekdb.pid", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.lockf(pid_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.ftruncate(pid_file, 0)
    os.write(pid_file, str(os.getpid()).encode())
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen()
    print("ready", flush=True)
    while True:
        time.sleep(60)


if __name__ == "__main__":
    main()
