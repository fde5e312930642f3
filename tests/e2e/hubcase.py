#!/usr/bin/python3
"""hubcase.py - an upstream that looks repo ids up case-insensitively, as
the Hub does (huggingface.co/ACME/Tiny is acme/tiny), for
tests/e2e/test_access_rules.sh.

usage: hubcase.py PORT_FILE UPSTREAM_PORT

Listens on 127.0.0.1 (port 0; the chosen port is written to PORT_FILE) and
forwards every request to 127.0.0.1:UPSTREAM_PORT (an hfmirror serving
lower-case repos) with its path lower-cased; the query, the method, the
headers that matter and the body go as they came, and the answer comes back
as it is.  One request per connection.
"""
import http.client
import http.server
import os
import sys

port_file, up_port = sys.argv[1], int(sys.argv[2])
HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}


class Relay(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *args):
        pass

    def relay(self):
        path, _, query = self.path.partition("?")
        target = path.lower() + ("?" + query if query else "")
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP | {"host"}}
        up = http.client.HTTPConnection("127.0.0.1", up_port, timeout=60)
        try:
            up.request(self.command, target, body=body, headers=headers)
            r = up.getresponse()
            data = r.read()
        except OSError as e:
            self.send_error(502, str(e))
            return
        finally:
            up.close()
        self.send_response(r.status, r.reason)
        for k, v in r.getheaders():
            if k.lower() not in HOP | {"content-length"}:
                self.send_header(k, v)
        length = r.getheader("Content-Length")
        self.send_header("Content-Length", length if self.command == "HEAD" and length
                         else str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_HEAD = do_POST = relay


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Relay)
tmp = port_file + ".tmp"
with open(tmp, "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(tmp, port_file)
srv.serve_forever()
