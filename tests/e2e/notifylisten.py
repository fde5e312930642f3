#!/usr/bin/env python3
"""notifylisten.py SOCKET OUT - stand in for systemd's end of sd_notify(3).

Binds an AF_UNIX datagram socket at SOCKET (what NOTIFY_SOCKET names) and
writes one line to OUT per message, its KEY=VALUE lines joined by " | ".
When a message says READY=1 with "STATUS=listening on URL", the listener
asks URL/healthz at once, before it reads the next message, and adds
" | healthz=STATUS" (or "healthz=ERROR ...") to the line: that is how a
test knows the daemon said READY=1 only when its port already answered,
which is what systemd takes READY=1 to mean.  Exits after STOPPING=1 is
recorded, or when killed.
"""
import os
import socket
import sys
import urllib.error
import urllib.request


def healthz(url):
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=10) as r:
            return "healthz=%d" % r.status
    except urllib.error.HTTPError as e:
        return "healthz=%d" % e.code
    except OSError as e:
        return "healthz=ERROR %s" % e


def main():
    path, out = sys.argv[1], sys.argv[2]
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    with open(out, "a", buffering=1) as f:
        f.write("listening\n")
        while True:
            msg = s.recv(4096).decode("utf-8", "replace")
            keys = [l for l in msg.split("\n") if l]
            line = " | ".join(keys)
            if "READY=1" in keys:
                for k in keys:
                    if k.startswith("STATUS=listening on "):
                        line += " | " + healthz(k[len("STATUS=listening on "):])
            f.write(line + "\n")
            if "STOPPING=1" in keys:
                return


if __name__ == "__main__":
    main()
