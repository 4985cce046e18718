"""Tiny TCP peers for the end-to-end tests, run as `python peers.py MODE ...`.

server NAME PORT        answer every line with "NAME LINE" (threaded, long-lived ok)
server6 NAME PORT       the same on IPv6 (and IPv4: "::" takes both unless bindv6only)
count ADDR PORT N       N short connections; print JSON {server name: count}
session ADDR PORT       one long-lived connection; each stdin line is sent and
                        the answer printed (or "ERROR ..." once it breaks)
"""

from __future__ import annotations

import json
import socket
import socketserver
import sys
from collections import Counter


class Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        for line in self.rfile:
            self.wfile.write(NAME + b" " + line)


def ask(sock: socket.socket, text: str) -> str:
    sock.sendall(text.encode() + b"\n")
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed by peer")
        data += chunk
    return data.decode().strip()


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode in ("server", "server6"):
        NAME = sys.argv[2].encode()
        socketserver.ThreadingTCPServer.allow_reuse_address = True
        socketserver.ThreadingTCPServer.daemon_threads = True
        if mode == "server6":
            socketserver.ThreadingTCPServer.address_family = socket.AF_INET6
        bind = "::" if mode == "server6" else "0.0.0.0"
        with socketserver.ThreadingTCPServer((bind, int(sys.argv[3])), Handler) as srv:
            print("ready", flush=True)
            srv.serve_forever()
    elif mode == "count":
        counts: Counter[str] = Counter()
        for i in range(int(sys.argv[4])):
            with socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=5) as s:
                counts[ask(s, f"hello {i}").split()[0]] += 1
        print(json.dumps(counts), flush=True)
    elif mode == "session":
        s = socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=10)
        print("connected", flush=True)
        for line in sys.stdin:
            try:
                print(ask(s, line.strip()), flush=True)
            except OSError as exc:
                print(f"ERROR {exc!r}", flush=True)
