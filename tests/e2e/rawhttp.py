#!/usr/bin/env python3
"""rawhttp.py - send exact bytes to an HTTP server and describe the answer.

  rawhttp.py HOST:PORT REQUEST [--timeout S] [--tls] [--then REQUEST] [--pause S]

REQUEST is a Python bytes expression (b'GET / HTTP/1.1\\r\\n...'), so a test
can send what no client library would: duplicate headers, NULs, bare CRs.
With --then, a second request is sent on the same connection once the first
answer is read (a kept-alive connection), after --pause seconds.

Prints one JSON object:
  status     the first answer's status code, or null if none came
  statuses   every answer parsed in order (a second one means the server ran
             bytes as a hidden request, or sent its headers twice)
  heads      how many times "HTTP/1." starts a line of header block in the
             raw bytes (2 for one answer whose headers were sent twice)
  closed     the server closed the connection (EOF or reset) before the timeout
  reset      the close was a reset
  headers    the first answer's headers (lower-case names)
  body       the first answer's body (text, cut at 300 characters)
  seconds    time from sending the last request to the end of reading

Bounded: reads until the server closes or --timeout seconds pass without
a byte.  Standard library only.
"""
import json
import re
import socket
import ssl
import sys
import time


def parse_answers(data):
    """Split raw bytes into answers (status, headers, body); stop at junk."""
    out = []
    pos = 0
    while pos < len(data):
        end = data.find(b"\r\n\r\n", pos)
        if end < 0:
            break
        head = data[pos:end].decode("latin-1")
        lines = head.split("\r\n")
        m = re.match(r"HTTP/1\.[01] (\d{3})", lines[0])
        if not m:
            break
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            hdrs.setdefault(k.strip().lower(), v.strip())
        n = int(hdrs.get("content-length", "0") or 0)
        body = data[end + 4:end + 4 + n]
        out.append((int(m.group(1)), hdrs, body))
        pos = end + 4 + n
        if len(body) < n:
            break
    return out


def read_until(s, timeout, data, done=lambda d: False):
    """Read onto data until done(data), EOF, a reset or `timeout` s of
    silence: (data, closed, reset)."""
    s.settimeout(timeout)
    while not done(data):
        try:
            c = s.recv(65536)
        except socket.timeout:
            return data, False, False
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError):
            return data, True, True
        if not c:
            return data, True, False
        data += c
    return data, False, False


def main():
    args = sys.argv[1:]
    host, port = args[0].rsplit(":", 1)
    first = eval(args[1])  # the test's own literal
    timeout, tls, then, pause = 10.0, False, None, 0.0
    i = 2
    while i < len(args):
        if args[i] == "--timeout":
            timeout = float(args[i + 1])
            i += 2
        elif args[i] == "--tls":
            tls = True
            i += 1
        elif args[i] == "--then":
            then = eval(args[i + 1])
            i += 2
        elif args[i] == "--pause":
            pause = float(args[i + 1])
            i += 2
        else:
            sys.exit("rawhttp.py: unknown argument " + args[i])
    s = socket.create_connection((host, int(port)), timeout=timeout)
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        s = ctx.wrap_socket(s)
    data = b""
    closed = reset = False
    try:
        s.sendall(first)
    except OSError:
        closed = reset = True
    if then is not None and not closed:
        # read the first answer whole before sending the next request
        data, closed, reset = read_until(s, timeout, data, lambda d: parse_answers(d))
        if not closed:
            time.sleep(pause)
            try:
                s.sendall(then)
            except OSError:
                closed = reset = True
    t0 = time.monotonic()
    if not closed:
        data, closed, reset = read_until(s, timeout, data)
    secs = time.monotonic() - t0
    answers = parse_answers(data)
    heads = len(re.findall(rb"HTTP/1\.[01] \d{3} ", data))
    first_a = answers[0] if answers else None
    print(json.dumps({
        "status": first_a[0] if first_a else None,
        "statuses": [a[0] for a in answers],
        "heads": heads,
        "closed": closed,
        "reset": reset,
        "headers": first_a[1] if first_a else {},
        "body": first_a[2].decode("utf-8", "replace")[:300] if first_a else "",
        "seconds": round(secs, 3),
    }))


if __name__ == "__main__":
    main()
