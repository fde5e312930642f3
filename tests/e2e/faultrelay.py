#!/usr/bin/python3
"""faultrelay.py - a TCP relay between the cache and its upstream that can
misbehave, for tests/e2e/test_cache.sh.

usage: faultrelay.py LISTEN_PORT_FILE UPSTREAM_PORT STATE_DIR

Listens on 127.0.0.1 (port 0; the chosen port is written to
LISTEN_PORT_FILE).  For every new connection it reads STATE_DIR/mode:

  pass        forward both ways
  drop N      close after N response bytes
  flip N      invert the byte at offset N of the first response body
  stall       accept, read the request, never answer
  err500      answer 500 to every request, no upstream contact
  norange     strip Range headers from requests (upstream sends 200)
  slow N      forward, responses at about N bytes/s (a kill lands mid-body)

Requests get "Connection: close", so each request is a new connection and
sees the mode current when it was sent.

Counts: STATE_DIR/conns (connections accepted) and STATE_DIR/bytes
(response bytes relayed), rewritten after every change.
"""
import os
import socket
import sys
import threading
import time

port_file, up_port, state = sys.argv[1], int(sys.argv[2]), sys.argv[3]
lock = threading.Lock()
counts = {"conns": 0, "bytes": 0}


def bump(key, n):
    with lock:
        counts[key] += n
        tmp = os.path.join(state, key + ".tmp")
        with open(tmp, "w") as f:
            f.write(str(counts[key]))
        os.replace(tmp, os.path.join(state, key))


def mode():
    try:
        with open(os.path.join(state, "mode")) as f:
            parts = f.read().split()
    except OSError:
        parts = []
    return (parts[0], int(parts[1]) if len(parts) > 1 else 0) if parts else ("pass", 0)


def client_to_up(c, u, how):
    first = True
    try:
        while True:
            d = c.recv(65536)
            if not d:
                break
            if first:
                # one request per connection, so that every request reads
                # the mode afresh (the cache keeps connections alive)
                d = d.replace(b"\r\n", b"\r\nConnection: close\r\n", 1)
                first = False
            if how == "norange":
                lines = d.split(b"\r\n")
                d = b"\r\n".join(l for l in lines if not l.lower().startswith(b"range:"))
            u.sendall(d)
    except OSError:
        pass
    try:
        u.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def up_to_client(c, u, how, arg):
    sent = 0
    seen = b""
    body_at = None
    flipped = False
    try:
        while True:
            d = u.recv(65536)
            if not d:
                break
            if how == "flip" and not flipped:
                if body_at is None:
                    seen += d
                    i = seen.find(b"\r\n\r\n")
                    if i >= 0:
                        body_at = i + 4
                start = sent
                if body_at is not None and start <= body_at + arg < start + len(d):
                    k = body_at + arg - start
                    d = d[:k] + bytes([d[k] ^ 0xFF]) + d[k + 1:]
                    flipped = True
            if how == "drop" and sent + len(d) > arg:
                d = d[: max(0, arg - sent)]
                c.sendall(d)
                bump("bytes", len(d))
                break
            if how == "slow" and arg > 0:
                for k in range(0, len(d), 8192):
                    c.sendall(d[k:k + 8192])
                    bump("bytes", len(d[k:k + 8192]))
                    time.sleep(len(d[k:k + 8192]) / arg)
                sent += len(d)
                continue
            c.sendall(d)
            sent += len(d)
            bump("bytes", len(d))
    except OSError:
        pass
    for s in (c, u):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()


def serve(c):
    bump("conns", 1)
    how, arg = mode()
    if how == "stall":
        try:
            c.recv(65536)
            threading.Event().wait(3600)
        finally:
            c.close()
        return
    if how == "err500":
        try:
            c.recv(65536)
            c.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n"
                      b"Connection: close\r\n\r\n")
        except OSError:
            pass
        c.close()
        return
    u = socket.create_connection(("127.0.0.1", up_port))
    threading.Thread(target=client_to_up, args=(c, u, how), daemon=True).start()
    up_to_client(c, u, how, arg)


srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0))
srv.listen(64)
with open(port_file + ".tmp", "w") as f:
    f.write(str(srv.getsockname()[1]))
os.replace(port_file + ".tmp", port_file)
while True:
    conn, _ = srv.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
