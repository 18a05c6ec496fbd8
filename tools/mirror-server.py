#!/usr/bin/env python3
"""Serves a directory over HTTP on 127.0.0.1 like a release download host, with Range
support (206 Partial Content) and faults to order, for tests and the demo.

  --port-file F      bind an ephemeral port and write it to F once listening
  --log F            append "METHOD PATH STATUS BYTES" per request
  --drop-once RE     the first GET of each matching path sends half the file, then cuts the
                     connection (a download that must resume)
  --corrupt RE       matching paths are served with one byte flipped in the middle
  --status RE=CODE   matching paths answer CODE (e.g. 503) with no body
  --status-once RE=CODE  only the first request of each matching path answers CODE
  --ignore-range RE  matching paths ignore Range and answer 200 with the whole file, as
                     some proxies and CDNs do
  --slow RE          matching paths are sent at about 1 MiB/s (a download to interrupt)
  --redirect RE      matching paths answer 302 to /_objects/PATH, which serves the file,
                     as GitHub sends release assets to objects.githubusercontent.com
  --tls CERT KEY     serve HTTPS with this certificate
  --mount PREFIX=DIR serve DIR under the URL path PREFIX as well (repeatable), e.g. a
                     distribution mirror beside the release downloads
"""

import argparse
import email.utils
import http.server
import os
import re
import socketserver
import ssl
import sys
import threading
import time


class Faults:
    def __init__(self, args):
        self.drop = re.compile(args.drop_once) if args.drop_once else None
        self.corrupt = re.compile(args.corrupt) if args.corrupt else None
        self.slow = re.compile(args.slow) if args.slow else None
        self.redirect = re.compile(args.redirect) if args.redirect else None
        self.ignore_range = re.compile(args.ignore_range) if args.ignore_range else None
        self.status = []
        for rule, once in [(r, False) for r in args.status or []] + [(r, True) for r in args.status_once or []]:
            pattern, code = rule.rsplit("=", 1)
            self.status.append((re.compile(pattern), int(code), once))
        self.answered = set()
        self.dropped = set()
        self.lock = threading.Lock()

    def status_for(self, path):
        for pattern, code, once in self.status:
            if pattern.search(path):
                with self.lock:
                    if once and path in self.answered:
                        continue
                    self.answered.add(path)
                return code
        return None

    def should_drop(self, path):
        if not self.drop or not self.drop.search(path):
            return False
        with self.lock:
            if path in self.dropped:
                return False
            self.dropped.add(path)
            return True


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    root = "."
    faults = None
    log_file = None
    mounts = []

    def log_message(self, format, *args):
        pass

    def record(self, status, sent):
        if self.log_file:
            with open(self.log_file, "a") as log:
                log.write(f"{self.command} {self.path} {status} {sent}\n")

    def answer(self, status, body=b"", headers=()):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.record(status, len(body))

    def range_start(self, size):
        """The first byte asked for, 0 without a Range header, None when past the end."""
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
        start = int(match.group(1)) if match else 0
        return start if start < size or (start == 0 and size == 0) else None

    def send_file(self, local):
        """A file as it is, with sendfile: fast enough that downloads, not the server, are measured.
        Validators as nginx and Apache send them (ETag from mtime and size, Last-Modified), and
        a matching If-None-Match or If-Modified-Since answered 304, so revalidation is real."""
        with open(local, "rb") as f:
            stat = os.fstat(f.fileno())
            size = stat.st_size
            etag = f'"{int(stat.st_mtime):x}-{size:x}"'
            modified = email.utils.formatdate(int(stat.st_mtime), usegmt=True)
            since = self.headers.get("If-Modified-Since")
            if self.headers.get("If-None-Match") == etag or (
                    "If-None-Match" not in self.headers and since and self.not_modified_since(since, stat.st_mtime)):
                return self.answer(304, headers=[("ETag", etag), ("Last-Modified", modified)])
            start = self.range_start(size)
            if start is None:
                return self.answer(416, headers=[("Content-Range", f"bytes */{size}")])
            partial = "Range" in self.headers
            self.send_response(206 if partial else 200)
            self.send_header("Content-Length", str(size - start))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", modified)
            if partial:
                self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
            self.end_headers()
            if self.command == "HEAD":
                return self.record(206 if partial else 200, 0)
            self.wfile.flush()
            offset = start
            if isinstance(self.connection, ssl.SSLSocket):
                f.seek(start)
                self.wfile.write(f.read())
                offset = size
            while offset < size:
                sent = os.sendfile(self.connection.fileno(), f.fileno(), offset, size - offset)
                if sent == 0:
                    break
                offset += sent
            self.record(206 if partial else 200, offset - start)

    @staticmethod
    def not_modified_since(since, mtime):
        try:
            return int(mtime) <= email.utils.parsedate_to_datetime(since).timestamp()
        except (TypeError, ValueError):
            return False

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        code = self.faults.status_for(path)
        if code:
            return self.answer(code)
        if path.startswith("/_objects/"):
            path = path[len("/_objects"):]
        elif self.faults.redirect and self.faults.redirect.search(path):
            return self.answer(302, headers=[("Location", "/_objects" + path)])
        if self.faults.ignore_range and self.faults.ignore_range.search(path) and "Range" in self.headers:
            del self.headers["Range"]
        root, rest = self.root, path
        for prefix, directory in self.mounts:
            if path == prefix or path.startswith(prefix + "/"):
                root, rest = directory, path[len(prefix):]
                break
        local = os.path.realpath(os.path.join(root, rest.lstrip("/")))
        if not local.startswith(root + os.sep) or not os.path.isfile(local):
            return self.answer(404, b"not found\n")
        faulty = any(f and f.search(path) for f in (self.faults.corrupt, self.faults.drop, self.faults.slow))
        if not faulty:
            return self.send_file(local)
        with open(local, "rb") as f:
            data = f.read()
        if self.faults.corrupt and self.faults.corrupt.search(path) and data:
            middle = len(data) // 2
            data = data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:]
        start = self.range_start(len(data))
        if start is None:
            return self.answer(416, headers=[("Content-Range", f"bytes */{len(data)}")])
        status = 206 if "Range" in self.headers else 200
        body = data[start:]
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        if self.command == "HEAD":
            return self.record(status, 0)
        if self.faults.should_drop(path):
            half = body[: len(body) // 2]
            self.wfile.write(half)
            self.wfile.flush()
            self.record("cut", len(half))
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if self.faults.slow and self.faults.slow.search(path):
            for offset in range(0, len(body), 65536):
                self.wfile.write(body[offset:offset + 65536])
                self.wfile.flush()
                time.sleep(0.06)
        else:
            self.wfile.write(body)
        self.record(status, len(body))


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("root")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file")
    parser.add_argument("--log")
    parser.add_argument("--drop-once")
    parser.add_argument("--corrupt")
    parser.add_argument("--status", action="append")
    parser.add_argument("--status-once", action="append")
    parser.add_argument("--ignore-range")
    parser.add_argument("--slow")
    parser.add_argument("--redirect")
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    parser.add_argument("--mount", action="append", default=[])
    args = parser.parse_args()
    Handler.root = os.path.realpath(args.root)
    mounts = [m.split("=", 1) for m in args.mount]
    Handler.mounts = sorted((("/" + p.strip("/"), os.path.realpath(d)) for p, d in mounts), key=lambda m: -len(m[0]))
    Handler.faults = Faults(args)
    Handler.log_file = args.log
    server = Server(("127.0.0.1", args.port), Handler)
    if args.tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*args.tls)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(str(server.server_address[1]))
        os.rename(args.port_file + ".tmp", args.port_file)
    print(f"serving {args.root} on http://127.0.0.1:{server.server_address[1]}", file=sys.stderr)
    server.serve_forever()


if __name__ == "__main__":
    main()
