"""Traffic for the BGP scale-out tier, run as `python bgpflows.py MODE ...`.

serve NAME PORT                    answer each line with "NAME LENGTH" (threaded)
flows SRC VIP PORT BASE N          N short flows from source ports BASE..BASE+N-1;
                                   prints JSON {port: server name or "ERROR ..."}
sessions SRC VIP PORT BASE K MS    K long-lived flows from ports BASE..BASE+K-1,
                                   each asking every MS ms; on each stdin line
                                   prints JSON {port: {"servers": [...],
                                   "answers": n, "error": str or null}}
load SRC VIP PORT BASE SECS C SIZE C workers, each opening short flows that send
                                   SIZE bytes, for SECS s; prints JSON
                                   {"flows": ok, "failed": n, "seconds": s}

Fixed source ports make a flow's 5-tuple, hence the router's ECMP choice and
each director's mh choice, the same from one run to the next. A short flow
closes with a RST (SO_LINGER 0): no TIME_WAIT, so a port can be used again
at once. Every wait has a timeout; every process ends by itself.
"""

from __future__ import annotations

import json
import socket
import socketserver
import struct
import sys
import threading
import time

LINGER_RST = struct.pack("ii", 1, 0)


class Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        for line in self.rfile:
            self.wfile.write(b"%s %d\n" % (NAME, len(line)))


def connect(src: str, sport: int, vip: str, port: int, timeout: float) -> socket.socket:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.settimeout(timeout)
    try:
        s.bind((src, sport))
        s.connect((vip, port))
    except OSError:
        s.close()
        raise
    return s


def ask(s: socket.socket, text: bytes) -> str:
    s.sendall(text + b"\n")
    data = b""
    while not data.endswith(b"\n"):
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError("closed by peer")
        data += chunk
    return data.decode().split()[0]


def short_flow(src: str, sport: int, vip: str, port: int, payload: bytes, timeout: float) -> str:
    s = connect(src, sport, vip, port, timeout)
    try:
        return ask(s, payload)
    finally:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
        s.close()


def flows(src: str, vip: str, port: int, base: int, n: int) -> None:
    out: dict[int, str] = {}
    for sport in range(base, base + n):
        try:
            out[sport] = short_flow(src, sport, vip, port, b"flow %d" % sport, 2.0)
        except OSError as exc:
            out[sport] = f"ERROR {type(exc).__name__}"
    print(json.dumps(out), flush=True)


def sessions(src: str, vip: str, port: int, base: int, k: int, every_ms: float) -> None:
    state: dict[int, dict[str, object]] = {}
    socks: dict[int, socket.socket] = {}
    for sport in range(base, base + k):
        socks[sport] = connect(src, sport, vip, port, 5.0)
        state[sport] = {"servers": [ask(socks[sport], b"hello")], "answers": 1, "error": None}
    lock = threading.Lock()

    def pinger() -> None:
        while True:
            for sport, s in socks.items():
                with lock:
                    st = state[sport]
                    if st["error"] is not None:
                        continue
                    try:
                        name = ask(s, b"ping")
                    except OSError as exc:
                        st["error"] = f"{type(exc).__name__}: {exc}"
                        continue
                    servers = st["servers"]
                    assert isinstance(servers, list)
                    if name not in servers:
                        servers.append(name)
                    st["answers"] = int(str(st["answers"])) + 1
            time.sleep(every_ms / 1000)

    threading.Thread(target=pinger, daemon=True).start()
    print("connected", flush=True)
    for _ in sys.stdin:
        with lock:
            print(json.dumps(state), flush=True)


def load(src: str, vip: str, port: int, base: int, secs: float, workers: int, size: int) -> None:
    payload = b"x" * size
    counts = {"flows": 0, "failed": 0}
    lock = threading.Lock()
    end = time.monotonic() + secs

    def worker(w: int) -> None:
        sport, top = base + w * 1000, base + w * 1000 + 999
        while time.monotonic() < end:
            try:
                short_flow(src, sport, vip, port, payload, 2.0)
                key = "flows"
            except OSError:
                key = "failed"
            with lock:
                counts[key] += 1
            sport = sport + 1 if sport < top else base + w * 1000

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(workers)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(secs + 10)
    print(json.dumps({**counts, "seconds": round(time.monotonic() - t0, 3)}), flush=True)


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "serve":
        NAME = args[0].encode()
        socketserver.ThreadingTCPServer.allow_reuse_address = True
        socketserver.ThreadingTCPServer.daemon_threads = True
        socketserver.ThreadingTCPServer.request_queue_size = 256
        with socketserver.ThreadingTCPServer(("0.0.0.0", int(args[1])), Handler) as srv:
            print("ready", flush=True)
            srv.serve_forever()
    elif mode == "flows":
        flows(args[0], args[1], int(args[2]), int(args[3]), int(args[4]))
    elif mode == "sessions":
        sessions(args[0], args[1], int(args[2]), int(args[3]), int(args[4]), float(args[5]))
    elif mode == "load":
        load(
            args[0], args[1], int(args[2]), int(args[3]), float(args[4]), int(args[5]), int(args[6])
        )
