"""Stand-ins for the three APIs of the example (GitHub-, Stripe- and user-service-like), for a demo
that needs no accounts and no Internet: one small server answering all three, each answer after
FAKE_API_DELAY_MS (default 150) to play a distant API, with the cache headers the real ones send.

  GET /repos/OWNER/NAME            public, max-age=60 + ETag   (like api.github.com)
  GET /repos/OWNER/NAME/releases
  GET /v1/balance, /v1/customers   no-cache, no-store          (like api.stripe.com)
  GET /api/v1/users, /api/v1/users/ID   no cache headers       (an internal service)

Run: python3 fake_apis.py (listens on HOST:PORT, default 0.0.0.0:8000).
"""

import hashlib
import json
import os
import re
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

DELAY_S = float(os.environ.get("FAKE_API_DELAY_MS", "150")) / 1000

USERS = [{"id": i, "name": n, "team": t} for i, (n, t) in enumerate(
    [("Ada", "platform"), ("Grace", "payments"), ("Linus", "infra"), ("Barbara", "api"), ("Ken", "infra")],
    start=1,
)]

GITHUB_CACHE = "public, max-age=60, s-maxage=60"
STRIPE_CACHE = "no-cache, no-store"


def answer(path):
    """(status, cache-control or None, body) for a path."""
    m = re.fullmatch(r"/repos/([\w.-]+)/([\w.-]+)", path)
    if m:
        return 200, GITHUB_CACHE, {
            "full_name": f"{m[1]}/{m[2]}",
            "description": "An HTTP/1.1 client, written from scratch for Node.js",
            "stargazers_count": 6789,
        }
    m = re.fullmatch(r"/repos/([\w.-]+)/([\w.-]+)/releases", path)
    if m:
        return 200, GITHUB_CACHE, [{"tag_name": t} for t in ("v7.3.0", "v7.2.3", "v7.2.2")]
    if path == "/v1/balance":
        return 200, STRIPE_CACHE, {"object": "balance", "available": [{"amount": 123456, "currency": "eur"}]}
    if path == "/v1/customers":
        return 200, STRIPE_CACHE, {
            "object": "list",
            "data": [{"id": f"cus_{i}", "email": f"customer{i}@example.com"} for i in range(1, 4)],
        }
    if path == "/api/v1/users":
        return 200, None, {"users": [{"id": u["id"]} for u in USERS]}
    m = re.fullmatch(r"/api/v1/users/(\d+)", path)
    if m:
        user = next((u for u in USERS if u["id"] == int(m[1])), None)
        return (200, None, user) if user else (404, None, {"error": "no such user"})
    return 404, None, {"error": "not found"}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        time.sleep(DELAY_S)
        status, cache_control, body = answer(urlsplit(self.path).path)
        data = json.dumps(body).encode()
        etag = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
        if status == 200 and cache_control == GITHUB_CACHE and self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.send_header("Cache-Control", cache_control)
            self.end_headers()
            return
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if cache_control:
            self.send_header("Cache-Control", cache_control)
        if cache_control == GITHUB_CACHE:
            self.send_header("ETag", etag)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        via = self.headers.get("Via", "-")
        print(f"{self.address_string()} {fmt % args} via={via}", flush=True)


if __name__ == "__main__":
    host, port = os.environ.get("HOST", "0.0.0.0"), int(os.environ.get("PORT", "8000"))
    print(f"fake APIs on {host}:{port}, {DELAY_S * 1000:.0f} ms per answer", flush=True)
    ThreadingHTTPServer((host, port), Handler).serve_forever()
