#!/usr/bin/python3
"""faultrelay.py - an HTTP relay between the cache and its upstream that can
misbehave, play the Hub's CDN, and gate repos, for tests/e2e/test_cache*.sh.

usage: faultrelay.py LISTEN_PORT_FILE UPSTREAM_PORT STATE_DIR

Listens on 127.0.0.1 (port 0; the chosen port is written to
LISTEN_PORT_FILE) and, as the "CDN", on 127.0.0.2 (port 0, written to
LISTEN_PORT_FILE.cdn first).  For every new connection it reads
STATE_DIR/mode:

  pass        forward both ways
  drop N      close after N response bytes
  flip N      invert the byte at offset N of the first response body
  flipmid     invert the middle byte (offset Content-Length / 2) of every
              response body over 1 MiB: a Range fetch of blocks is wrong
              where a small Range inside it looks (test_cache_range.sh)
  stall       accept, read the request, never answer
  err500      answer 500 to every request, no upstream contact
  norange     strip Range headers from requests (upstream sends 200)
  slow N      forward, responses at about N bytes/s (a kill lands mid-body)
  link N      forward, all responses together at most N bytes/s, as through
              one shared WAN link (bench/cache's coldwan case)
  redirect    as the Hub: GET/HEAD of an LFS file (/{repo}/resolve/... or
              /{datasets,spaces}/{repo}/resolve/...) is answered 302 Found,
              Location http://127.0.0.2:CDNPORT/<same path and query>, with
              the headers the Hub puts on it (X-Repo-Commit, ETag = the LFS
              pointer's git blob id, X-Linked-Etag, X-Linked-Size, taken from
              a HEAD to upstream).  Files that are not LFS are served
              directly, as by the Hub; /raw/ and /api/ requests pass.

The CDN listener forwards every request to upstream unchanged (no gating, no
redirect; the other modes apply) and appends one line per request to
STATE_DIR/cdn_log: METHOD PATH RANGE|- auth|noauth (whether an
Authorization header came with it).

Gated and private repos, whatever the mode: STATE_DIR/gated (read for every
request) may hold lines "gated REPO TOKEN" or "private REPO TOKEN", REPO as
acme/g1 (a model), datasets/acme/d1, spaces/acme/s1.  A request for such a
repo is authorized when it carries "Authorization: Bearer TOKEN".  Denials
are the Hub's (X-Error-Code, X-Error-Message, JSON {"error": ...}), 401
without any Authorization header, else 403 (GatedRepo) or 404
(RepoNotFound):
  info (/api/T/REPO, /api/T/REPO/revision/R): gated: upstream's answer with
      "gated": "manual" in it; private: authorized, with "private": true,
      else RepoNotFound
  /api/T/REPO/auth-check: authorized: 200 {}; gated: GatedRepo; private:
      RepoNotFound
  files (/REPO/resolve/..., /REPO/raw/...), any method: authorized: passed;
      else gated: GatedRepo, private: RepoNotFound
  other /api/T/REPO/... (tree, paths-info, refs, commits): passed, except
      private and not authorized: RepoNotFound
auth-check requests for repos not listed go to upstream.

Failing paths, whatever the mode: STATE_DIR/fail (read for every request)
may hold path prefixes, one a line; a request to the relay (not the CDN)
whose path starts with one is answered 500, no upstream contact: an
upstream that cannot answer for one repo while it answers for others.

Requests get "Connection: close", so each request is a new connection and
sees the mode current when it was sent.  drop, flip and slow also apply to
the answers the relay makes itself (302s, denials, rewritten info).

Counts: STATE_DIR/conns (connections accepted, both listeners),
STATE_DIR/bytes (response bytes sent to clients) and STATE_DIR/authchecks
(auth-check requests seen), rewritten after every change.
"""
import hashlib
import http.client
import json
import os
import re
import socket
import sys
import threading
import time

port_file, up_port, state = sys.argv[1], int(sys.argv[2]), sys.argv[3]
UPSTREAM = ("127.0.0.1", up_port)
CDN_HOST = "127.0.0.2"
HEAD_MAX = 1 << 20
lock = threading.Lock()
counts = {"conns": 0, "bytes": 0, "authchecks": 0}
cdn_port = 0

REASONS = {200: "OK", 302: "Found", 401: "Unauthorized", 403: "Forbidden",
           404: "Not Found", 500: "Internal Server Error"}
AUTH_CHECK = re.compile(r"^/api/(models|datasets|spaces)/.+/auth-check$")
RESOLVE = re.compile(r"^/((datasets|spaces)/)?[^/]+(/[^/]+)?/resolve/")


def bump(key, n):
    with lock:
        counts[key] += n
        tmp = os.path.join(state, key + ".tmp")
        with open(tmp, "w") as f:
            f.write(str(counts[key]))
        os.replace(tmp, os.path.join(state, key))


def log_cdn(line):
    with lock:
        with open(os.path.join(state, "cdn_log"), "a") as f:
            f.write(line + "\n")


def mode():
    try:
        with open(os.path.join(state, "mode")) as f:
            parts = f.read().split()
    except OSError:
        parts = []
    return (parts[0], int(parts[1]) if len(parts) > 1 else 0) if parts else ("pass", 0)


ERR500 = b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def failing(path):
    try:
        with open(os.path.join(state, "fail")) as f:
            return any(path.startswith(l.strip()) for l in f if l.strip())
    except OSError:
        return False


def gate_rules():
    try:
        with open(os.path.join(state, "gated")) as f:
            return [l.split() for l in f if len(l.split()) == 3]
    except OSError:
        return []


class Request:
    """A request head as the client sent it."""

    def __init__(self, head):
        lines = head.decode("latin-1").split("\r\n")
        self.method, self.target = (lines[0].split(" ") + ["", ""])[:2]
        self.path = self.target.split("?", 1)[0]
        self.headers = []
        for l in lines[1:]:
            if ":" in l:
                k, v = l.split(":", 1)
                self.headers.append((k.strip(), v.strip()))

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    def forward(self, strip_range):
        """The head to send upstream: one request per connection (the cache
        keeps connections alive), so that every request reads the mode."""
        drop = ("connection", "range") if strip_range else ("connection",)
        lines = [self.method + " " + self.target + " HTTP/1.1"]
        lines += [k + ": " + v for k, v in self.headers if k.lower() not in drop]
        lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def response(status, headers, body, head_only):
    lines = ["HTTP/1.1 %d %s" % (status, REASONS.get(status, "Status"))]
    lines += [k + ": " + v for k, v in headers]
    lines += ["Content-Length: %d" % len(body), "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if head_only else body)


def hub_error(req, status, code, message):
    return response(status, [("Content-Type", "application/json; charset=utf-8"),
                             ("X-Error-Code", code), ("X-Error-Message", message)],
                    json.dumps({"error": message}).encode(), req.method == "HEAD")


def repo_kind(repo):
    """acme/g1 -> (models, acme/g1); datasets/acme/d1 -> (datasets, acme/d1)."""
    for t in ("datasets", "spaces"):
        if repo.startswith(t + "/"):
            return t, repo[len(t) + 1:]
    return "models", repo


def classify(path, repo):
    """What `path` asks of `repo`: info, authcheck, api, file, or None."""
    api = "/api/%s/%s" % repo_kind(repo)
    if path == api or path.startswith(api + "/"):
        rest = path[len(api) + 1:]
        if rest == "" or rest.startswith("revision/"):
            return "info"
        return "authcheck" if rest == "auth-check" else "api"
    if path.startswith("/" + repo + "/") and \
            path[len(repo) + 2:].split("/", 1)[0] in ("resolve", "raw"):
        return "file"
    return None


def gate(req):
    """None (pass), ("answer", bytes) or ("inject", {key: value})."""
    for how, repo, token in gate_rules():
        what = classify(req.path, repo)
        if not what:
            continue
        auth = req.header("authorization")
        ok = auth == "Bearer " + token
        if how == "private" and not ok:
            return ("answer", hub_error(req, 401 if auth is None else 404, "RepoNotFound",
                                        "Repository not found"))
        kind, name = repo_kind(repo)
        denied = hub_error(req, 401 if auth is None else 403, "GatedRepo",
                           "Access to %s %s is restricted" % (kind[:-1], name))
        if what == "authcheck":
            return ("answer", response(200, [("Content-Type", "application/json")], b"{}",
                                       req.method == "HEAD") if ok else denied)
        if what == "file" and how == "gated" and not ok:
            return ("answer", denied)
        if what == "info":
            return ("inject", {"gated": "manual"} if how == "gated" else {"private": True})
        return None
    return None


def upstream_whole(req, rest, inject):
    """Upstream's whole answer to the request, its JSON object (if 200)
    with `inject` merged in, as one response with a new Content-Length."""
    u = socket.create_connection(UPSTREAM)
    try:
        u.sendall(req.forward(False) + rest)
        r = http.client.HTTPResponse(u, method=req.method)
        r.begin()
        body = r.read()
        headers = [(k, v) for k, v in r.getheaders()
                   if k.lower() not in ("content-length", "transfer-encoding", "connection")]
    finally:
        u.close()
    if r.status == 200 and body:
        try:
            obj = json.loads(body)
        except ValueError:
            obj = None
        if isinstance(obj, dict):
            obj.update(inject)
            body = json.dumps(obj, separators=(",", ":")).encode()
    return response(r.status, headers, body, req.method == "HEAD")


def redirect(req):
    """The Hub's 302 to its CDN for an LFS file, or None (not LFS, an
    error: upstream answers it)."""
    conn = http.client.HTTPConnection(*UPSTREAM, timeout=60)
    try:
        auth = req.header("authorization")
        conn.request("HEAD", req.target, headers={"Authorization": auth} if auth else {})
        r = conn.getresponse()
        r.read()
    finally:
        conn.close()
    linked, size = r.getheader("X-Linked-Etag"), r.getheader("X-Linked-Size")
    if r.status != 200 or not linked or not size:
        return None
    pointer = ("version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %s\n"
               % (linked.strip('"'), size)).encode()
    pointer_oid = hashlib.sha1(b"blob %d\0" % len(pointer) + pointer).hexdigest()
    location = "http://%s:%d%s" % (CDN_HOST, cdn_port, req.target)
    return response(302, [("Content-Type", "text/plain; charset=utf-8"),
                          ("X-Repo-Commit", r.getheader("X-Repo-Commit") or ""),
                          ("ETag", '"%s"' % pointer_oid),
                          ("X-Linked-Etag", linked), ("X-Linked-Size", size),
                          ("Location", location)],
                    ("Found. Redirecting to " + location).encode(), req.method == "HEAD")


link_lock = threading.Lock()
link_free = [0.0]           # when the shared link has sent what it was given


def link_wait(n, rate):
    """Take n bytes' time on the shared link; sleep until they are through."""
    with link_lock:
        now = time.monotonic()
        link_free[0] = max(now, link_free[0]) + n / rate
        until = link_free[0]
    time.sleep(max(0.0, until - now))


class Out:
    """Response bytes to the client, shaped by the mode (drop, flip, slow, link)."""

    def __init__(self, c, how, arg):
        self.c, self.how, self.arg = c, how, arg
        self.sent = 0
        self.seen = b""
        self.body_at = None
        self.flipped = False
        if how == "flipmid":
            self.arg = None          # the body's middle, once its length is known

    def send(self, d):
        """False once the mode says to stop sending."""
        how, arg = self.how, self.arg
        if how in ("flip", "flipmid") and not self.flipped:
            if self.body_at is None:
                self.seen += d
                i = self.seen.find(b"\r\n\r\n")
                if i >= 0:
                    self.body_at = i + 4
                    if how == "flipmid":
                        m = re.search(rb"(?im)^content-length:\s*(\d+)", self.seen[:i])
                        n = int(m.group(1)) if m else 0
                        self.arg = arg = n // 2 if n > (1 << 20) else None
            start = self.sent
            if self.body_at is not None and arg is not None and \
                    start <= self.body_at + arg < start + len(d):
                k = self.body_at + arg - start
                d = d[:k] + bytes([d[k] ^ 0xFF]) + d[k + 1:]
                self.flipped = True
        if how == "drop" and self.sent + len(d) > arg:
            d = d[: max(0, arg - self.sent)]
            self.c.sendall(d)
            bump("bytes", len(d))
            return False
        if how == "link" and arg > 0:
            link_wait(len(d), arg)
        if how == "slow" and arg > 0:
            for k in range(0, len(d), 8192):
                self.c.sendall(d[k:k + 8192])
                bump("bytes", len(d[k:k + 8192]))
                time.sleep(len(d[k:k + 8192]) / arg)
        else:
            self.c.sendall(d)
            bump("bytes", len(d))
        self.sent += len(d)
        return True


def read_head(c):
    """(request head, bytes after it), or (None, b"") if the client left."""
    buf = b""
    while b"\r\n\r\n" not in buf and len(buf) < HEAD_MAX:
        d = c.recv(65536)
        if not d:
            return None, b""
        buf += d
    i = buf.find(b"\r\n\r\n") + 4
    return buf[:i], buf[i:]


def close(*socks):
    for s in socks:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()


def client_to_up(c, u):
    try:
        while True:
            d = c.recv(65536)
            if not d:
                break
            u.sendall(d)
    except OSError:
        pass
    try:
        u.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def relay(c, req, rest, how, out):
    u = socket.create_connection(UPSTREAM)
    u.sendall(req.forward(how == "norange") + rest)
    threading.Thread(target=client_to_up, args=(c, u), daemon=True).start()
    try:
        while True:
            d = u.recv(65536)
            if not d or not out.send(d):
                break
    except OSError:
        pass
    close(c, u)


def serve(c, cdn):
    bump("conns", 1)
    how, arg = mode()
    try:
        head, rest = read_head(c)
        if how == "stall":
            threading.Event().wait(3600)
            return
        if how == "err500":
            c.sendall(ERR500)
            return
        if head is None:
            return
        req = Request(head)
        out = Out(c, how, arg)
        if cdn:
            auth = "auth" if req.header("authorization") is not None else "noauth"
            log_cdn("%s %s %s %s" % (req.method, req.target, req.header("range") or "-", auth))
        else:
            if AUTH_CHECK.match(req.path):
                bump("authchecks", 1)
            if failing(req.path):
                c.sendall(ERR500)
                return
            verdict = gate(req)
            if verdict and verdict[0] == "answer":
                out.send(verdict[1])
                return
            if how == "redirect" and req.method in ("GET", "HEAD") and RESOLVE.match(req.path):
                answer = redirect(req)
                if answer:
                    out.send(answer)
                    return
            if verdict:
                out.send(upstream_whole(req, rest, verdict[1]))
                return
        relay(c, req, rest, how, out)
    except OSError:
        pass
    finally:
        close(c)


def listen(host):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, 0))
    s.listen(64)
    return s


def accept_loop(srv, cdn):
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(conn, cdn), daemon=True).start()


def write_port(path, port):
    with open(path + ".tmp", "w") as f:
        f.write(str(port))
    os.replace(path + ".tmp", path)


cdn_srv = listen(CDN_HOST)
cdn_port = cdn_srv.getsockname()[1]
srv = listen("127.0.0.1")
# the CDN's port first: whoever sees the main port file may use both
write_port(port_file + ".cdn", cdn_port)
write_port(port_file, srv.getsockname()[1])
threading.Thread(target=accept_loop, args=(cdn_srv, True), daemon=True).start()
accept_loop(srv, False)
