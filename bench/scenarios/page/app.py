"""The overview page of issue 10, for `npm run bench:scenario`: one Flask page built from 20 calls to
three third-party APIs (GitHub-, Stripe- and user-service-like), made one after the other with a
plain ``requests.get`` / ``requests.post`` each (no Session: a new connection per call), as the app
of the issue did. It is examples/flask-app/app.py grown to the issue's page: GitHub repository
lists paginated with Link headers, Stripe plans/products/prices and the balance, a user service
with a GET of custom data and a POST that saves it.

Configuration, all by environment:
  GITHUB_API, STRIPE_API, USERS_API   base URLs (an origin, or a sidecache reverse route)
  GITHUB_TOKEN, STRIPE_API_KEY        sent as "Authorization: Bearer ..."
  USERS_API_KEY                       sent as "X-Api-Key"
  DNS_SERVER                          optional IP:PORT: resolve every host name with one DNS query
                                      (A, over UDP) to that nameserver, on every call, instead of
                                      the system resolver (see "Name resolution" below)
  HOST, PORT                          where this app listens (default 127.0.0.1:5000)
  HTTPS_PROXY, REQUESTS_CA_BUNDLE     read by requests itself

Name resolution: the bench needs the app to resolve the APIs' names through a slow nameserver on
loopback, the way a container's getaddrinfo asks the nameserver of /etc/resolv.conf on every call
when nothing caches. Pointing the system resolver at another server would need root, so with
DNS_SERVER set this process replaces ``socket.getaddrinfo`` for host names (not IP literals, not
localhost) with a minimal stub resolver: one A query over UDP per lookup, no cache. glibc would ask
A and AAAA in parallel; one query costs the same wall time. IP literals (the proxy's 127.0.0.1)
never query.

Endpoints: /overview (HTML with the page's content only, no timings, so pages can be compared
byte for byte), /healthz.
"""

import os
import random
import re
import socket
import struct
from urllib.parse import urlsplit

import requests
from flask import Flask, render_template_string


def _base(name):
    return os.environ[name].rstrip("/")


GITHUB_API = _base("GITHUB_API")
STRIPE_API = _base("STRIPE_API")
USERS_API = _base("USERS_API")
GITHUB_TOKEN = os.environ.get("GITHUB_TOKEN", "")
STRIPE_API_KEY = os.environ.get("STRIPE_API_KEY", "")
USERS_API_KEY = os.environ.get("USERS_API_KEY", "")
DNS_SERVER = os.environ.get("DNS_SERVER", "")
TIMEOUT_S = 30
USER_ID = 1
CUSTOM_DATA = {"theme": "dark", "pinned": ["acme/widgets"], "lastPage": "overview"}

# --- name resolution through DNS_SERVER (no cache) ----------------------------------------------

_system_getaddrinfo = socket.getaddrinfo


def _skip_name(data, off):
    while True:
        n = data[off]
        if n == 0:
            return off + 1
        if n & 0xC0 == 0xC0:  # compression pointer
            return off + 2
        off += 1 + n


def _query_a(name, server):
    host, port = server.rsplit(":", 1)
    qid = random.getrandbits(16)
    qname = b"".join(bytes([len(label)]) + label.encode() for label in name.rstrip(".").split("."))
    query = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + qname + b"\0" + struct.pack(">HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.sendto(query, (host, int(port)))
        while True:
            data, _ = s.recvfrom(4096)
            if struct.unpack(">H", data[:2])[0] == qid:
                break
    _, flags, qdcount, ancount, _, _ = struct.unpack(">HHHHHH", data[:12])
    if flags & 0xF:
        raise socket.gaierror(socket.EAI_NONAME, f"{name}: rcode {flags & 0xF}")
    off = 12
    for _ in range(qdcount):
        off = _skip_name(data, off) + 4
    addresses = []
    for _ in range(ancount):
        off = _skip_name(data, off)
        rtype, _, _, rdlength = struct.unpack(">HHIH", data[off : off + 10])
        off += 10
        if rtype == 1 and rdlength == 4:
            addresses.append(socket.inet_ntoa(data[off : off + 4]))
        off += rdlength
    if not addresses:
        raise socket.gaierror(socket.EAI_NODATA, f"{name}: no A record")
    return addresses


def _is_ip(host):
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
            return True
        except OSError:
            pass
    return False


def _getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
    name = host.decode() if isinstance(host, bytes) else host
    if not name or name == "localhost" or _is_ip(name):
        return _system_getaddrinfo(host, port, family, type, proto, flags)
    return [
        (socket.AF_INET, type or socket.SOCK_STREAM, proto or socket.IPPROTO_TCP, "", (a, int(port or 0)))
        for a in _query_a(name, DNS_SERVER)
    ]


if DNS_SERVER:
    socket.getaddrinfo = _getaddrinfo

# --- the page ------------------------------------------------------------------------------------

app = Flask(__name__)


class Calls:
    def __init__(self):
        self.count = 0

    def _headers(self, api):
        headers = {"Accept": "application/json", "User-Agent": "sidecache-scenario"}
        if api == "github":
            headers["Accept"] = "application/vnd.github+json"
            headers["Authorization"] = "Bearer " + GITHUB_TOKEN
        elif api == "stripe":
            headers["Authorization"] = "Bearer " + STRIPE_API_KEY
        else:
            headers["X-Api-Key"] = USERS_API_KEY
        return headers

    def get(self, api, url):
        self.count += 1
        res = requests.get(url, headers=self._headers(api), timeout=TIMEOUT_S)
        res.raise_for_status()
        return res

    def post(self, api, url, body):
        self.count += 1
        res = requests.post(url, json=body, headers=self._headers(api), timeout=TIMEOUT_S)
        res.raise_for_status()
        return res


def _next_page(res, base):
    """The next page's URL from a Link header, on our own base URL (origin or reverse route)."""
    m = re.search(r'<([^>]+)>;\s*rel="next"', res.headers.get("Link", ""))
    if not m:
        return None
    target = urlsplit(m[1])
    return f"{base}{target.path}?{target.query}"


def overview():
    calls = Calls()
    repo = calls.get("github", f"{GITHUB_API}/repos/acme/widgets").json()
    releases = calls.get("github", f"{GITHUB_API}/repos/acme/widgets/releases?per_page=3").json()
    contributors = calls.get("github", f"{GITHUB_API}/repos/acme/widgets/contributors?per_page=3").json()
    org_repos = []
    url = f"{GITHUB_API}/orgs/acme/repos?per_page=25&page=1"
    while url:
        res = calls.get("github", url)
        org_repos.extend(res.json())
        url = _next_page(res, GITHUB_API)

    plans = calls.get("stripe", f"{STRIPE_API}/v1/plans").json()["data"]
    products = calls.get("stripe", f"{STRIPE_API}/v1/products").json()["data"]
    prices = calls.get("stripe", f"{STRIPE_API}/v1/prices").json()["data"]
    balance = calls.get("stripe", f"{STRIPE_API}/v1/balance").json()

    listing = calls.get("users", f"{USERS_API}/v1/users?limit=5").json()
    team = [calls.get("users", f"{USERS_API}/v1/users/{u['id']}").json() for u in listing["users"]]
    teams = calls.get("users", f"{USERS_API}/v1/teams").json()["teams"]
    custom = calls.get("users", f"{USERS_API}/v1/users/{USER_ID}/custom-data").json()
    calls.post("users", f"{USERS_API}/v1/users/{USER_ID}/custom-data", CUSTOM_DATA)

    return {
        "repo": repo,
        "releases": [r["tag_name"] for r in releases],
        "contributors": [c["login"] for c in contributors],
        "org_repos": org_repos,
        "plans": plans,
        "products": {p["id"]: p["name"] for p in products},
        "prices": prices,
        "balance": balance["available"][0],
        "team": team,
        "teams": teams,
        "custom": custom,
        "calls": calls.count,
    }


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Overview</title></head>
<body>
<h1>{{ o.repo.full_name }}</h1>
<p>{{ o.repo.description }}: {{ o.repo.stargazers_count }} stars, {{ o.repo.open_issues_count }} open issues.
Releases: {{ o.releases | join(", ") }}. Top contributors: {{ o.contributors | join(", ") }}.</p>
<h2>{{ o.org_repos | length }} repositories in acme</h2>
<ul>{% for r in o.org_repos %}<li>{{ r.full_name }} ({{ r.language }}, {{ r.stargazers_count }})</li>{% endfor %}</ul>
<h2>Billing</h2>
<p>Balance: {{ o.balance.amount }} {{ o.balance.currency }}</p>
<ul>{% for p in o.plans %}<li>{{ p.id }}: {{ p.amount }} {{ p.currency }}/{{ p.interval }}</li>{% endfor %}</ul>
<ul>{% for p in o.prices %}<li>{{ o.products[p.product] }}: {{ p.unit_amount }} {{ p.currency }}</li>{% endfor %}</ul>
<h2>Team ({{ o.teams | join(", ") }})</h2>
<ul>{% for u in o.team %}<li>{{ u.name }} ({{ u.team }})</li>{% endfor %}</ul>
<p>Your settings: theme {{ o.custom.theme }}, pinned {{ o.custom.pinned | join(", ") }}.</p>
<footer>{{ o.calls }} API calls</footer>
</body></html>
"""


@app.get("/overview")
def page():
    o = overview()
    return render_template_string(PAGE, o=o), 200, {"X-Api-Calls": str(o["calls"])}


@app.get("/healthz")
def healthz():
    return "ok\n"


if __name__ == "__main__":
    app.run(host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "5000")))
