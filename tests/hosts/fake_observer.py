#!/usr/bin/env python3
"""A fake OceanBase `bin/observer` for the observer driver's tests (no observer binary
exists here). It behaves as the parts of an observer that obpilot relies on do:

* parses the observer's options (-p -P -z -n -c -d -I -i -r -l -o -N -V);
* daemonises unless -N (fork, setsid, stdio to /dev/null; working directory kept);
* takes the lockf lock on run/observer.pid and writes its pid there;
* appends one JSON line per start to log/observer.log: argv, cwd, LD_LIBRARY_PATH;
* listens on the RPC port and serves the MySQL protocol on the SQL port: handshake,
  mysql_native_password login as root (password in etc/fake_root_password, empty if the
  file is missing; `ALTER USER root IDENTIFIED BY '...'` writes it), `SELECT 1`,
  `SELECT version()`, any other statement answered OK and logged to log/observer.log;
* SIGUSR1 stops it cleanly (exit 0); SIGTERM is answered with SIGKILL, as the real one.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import re
import select
import signal
import socket
import struct
import sys
import threading
import time

VERSION = "5.7.25-OceanBase_CE-v4.2.1.0"
stopping = threading.Event()


def log(entry: dict[str, object]) -> None:
    with open("log/observer.log", "a") as handle:
        handle.write(json.dumps(entry) + "\n")


def packet(sequence: int, payload: bytes) -> bytes:
    return struct.pack("<I", len(payload))[:3] + bytes([sequence & 0xFF]) + payload


def read_packet(conn: socket.socket) -> tuple[int, bytes]:
    header = b""
    while len(header) < 4:
        chunk = conn.recv(4 - len(header))
        if not chunk:
            raise ConnectionError
        header += chunk
    length = header[0] | header[1] << 8 | header[2] << 16
    body = b""
    while len(body) < length:
        chunk = conn.recv(length - len(body))
        if not chunk:
            raise ConnectionError
        body += chunk
    return header[3], body


def lenenc(value: bytes) -> bytes:
    return bytes([len(value)]) + value


def ok_packet(sequence: int) -> bytes:
    return packet(sequence, b"\x00\x00\x00\x02\x00\x00\x00")


def error_packet(sequence: int, code: int, message: str) -> bytes:
    return packet(sequence, b"\xff" + struct.pack("<H", code) + b"#28000" + message.encode())


def result_set(value: str) -> bytes:
    column = (
        lenenc(b"def")
        + lenenc(b"")
        + lenenc(b"")
        + lenenc(b"")
        + lenenc(b"c")
        + lenenc(b"")
        + b"\x0c"
        + struct.pack("<HIBHB", 33, 256, 253, 0, 0)
        + b"\x00\x00"
    )
    eof = b"\xfe\x00\x00\x02\x00"
    return (
        packet(1, b"\x01")
        + packet(2, column)
        + packet(3, eof)
        + packet(4, lenenc(value.encode()))
        + packet(5, eof)
    )


def expected_scramble(password: bytes, salt: bytes) -> bytes:
    if not password:
        return b""
    sha1 = hashlib.sha1  # mysql_native_password's own hash
    stage1 = sha1(password).digest()
    stage2 = sha1(stage1).digest()
    mix = sha1(salt + stage2).digest()
    return bytes(a ^ b for a, b in zip(stage1, mix, strict=False))


def serve_client(conn: socket.socket, password: bytes) -> None:
    salt = os.urandom(20).replace(b"\0", b"\1")
    handshake = (
        b"\x0a"
        + VERSION.encode()
        + b"\0"
        + struct.pack("<I", 1)
        + salt[:8]
        + b"\0"
        + struct.pack("<H", 0xF7FF)
        + bytes([45])
        + struct.pack("<H", 2)
        + struct.pack("<H", 0x0008)
        + bytes([21])
        + b"\0" * 10
        + salt[8:]
        + b"\0"
        + b"mysql_native_password\0"
    )
    try:
        conn.sendall(packet(0, handshake))
        sequence, response = read_packet(conn)
        user_end = response.index(b"\0", 32)
        user = response[32:user_end].decode()
        size = response[user_end + 1]
        scramble = response[user_end + 2 : user_end + 2 + size]
        if user != "root" or scramble != expected_scramble(password, salt):
            conn.sendall(error_packet(sequence + 1, 1045, f"Access denied for user '{user}'"))
            return
        conn.sendall(ok_packet(sequence + 1))
        while True:
            _, command = read_packet(conn)
            if command[:1] == b"\x01":
                return
            query = command[1:].decode()
            if query.strip().lower() == "select 1":
                conn.sendall(result_set("1"))
            elif query.strip().lower() == "select version()":
                conn.sendall(result_set(VERSION))
            else:
                log({"query": query})
                new_password = ROOT_PASSWORD.match(query.strip())
                if new_password:
                    with open("etc/fake_root_password", "w") as handle:
                        handle.write(new_password.group(1).replace("\\'", "'"))
                conn.sendall(ok_packet(1))
    except (ConnectionError, OSError, ValueError):
        pass
    finally:
        conn.close()


ROOT_PASSWORD = re.compile(r"^ALTER USER root IDENTIFIED BY '((?:[^'\\]|\\.)*)'$", re.IGNORECASE)


def root_password() -> bytes:
    try:
        with open("etc/fake_root_password", "rb") as handle:
            return handle.read().strip()
    except FileNotFoundError:
        return b""


def main() -> None:
    parser = argparse.ArgumentParser(add_help=False)
    for flag in ("-p", "-P", "-z", "-n", "-c", "-d", "-I", "-i", "-r", "-l", "-o"):
        parser.add_argument(flag)
    parser.add_argument("-N", action="store_true")
    parser.add_argument("-V", action="store_true")
    options = parser.parse_args()
    if options.V:
        print("observer (OceanBase_CE 4.2.1.0)\n\nREVISION: fake", file=sys.stderr)
        return
    for directory in ("run", "log", "etc"):
        os.makedirs(directory, exist_ok=True)
    if not options.N:
        if os.fork() > 0:
            os._exit(0)
        os.setsid()
        null = os.open(os.devnull, os.O_RDWR)
        for descriptor in (0, 1, 2):
            os.dup2(null, descriptor)
    pid_file = os.open("run/observer.pid", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.lockf(pid_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        log({"error": "pid already exists"})
        os._exit(1)
    os.ftruncate(pid_file, 0)
    os.write(pid_file, str(os.getpid()).encode())
    log(
        {
            "argv": sys.argv[1:],
            "cwd": os.getcwd(),
            "LD_LIBRARY_PATH": os.environ.get("LD_LIBRARY_PATH"),
        }
    )
    signal.signal(signal.SIGUSR1, lambda *_: stopping.set())
    signal.signal(signal.SIGTERM, lambda *_: os.kill(os.getpid(), signal.SIGKILL))
    listeners = []
    for port in (int(options.p), int(options.P)):
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("0.0.0.0", port))  # noqa: S104 - as the observer does
        listener.listen(16)
        listeners.append(listener)
    sql = listeners[0]
    while not stopping.is_set():
        readable, _, _ = select.select([sql], [], [], 0.1)
        if readable:
            conn, _ = sql.accept()
            threading.Thread(target=serve_client, args=(conn, root_password()), daemon=True).start()
    time.sleep(0.3)  # the real one takes a few seconds to stop cleanly
    os._exit(0)


if __name__ == "__main__":
    main()
