"""An overview page built from three third-party APIs, the way many apps do it.

Every call is a plain ``requests.get`` (no Session, so no connection reuse of its own), made one
after the other: without a proxy each one pays DNS, TCP and TLS again. Pointed at sidecache with
``HTTP_PROXY`` (or with base URLs on sidecache's reverse routes), nothing in this file changes.

Configuration, all by environment:
  GITHUB_API      base URL of a GitHub-like API    (default https://api.github.com)
  STRIPE_API      base URL of a Stripe-like API    (default https://api.stripe.com)
  USERS_API       base URL of the user service     (default http://user-service.internal:8000/api)
  GITHUB_REPO     repository shown                 (default nodejs/undici)
  GITHUB_TOKEN    optional, sent as "Authorization: Bearer ..."
  STRIPE_API_KEY  optional, sent as "Authorization: Bearer ..."
  API_TIMEOUT_S   per-call timeout in seconds      (default 10)
  HOST, PORT      where this app listens           (default 127.0.0.1:5000)
  HTTP_PROXY, HTTPS_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE: read by requests itself.

Run: python3 app.py, then open http://127.0.0.1:5000/ (or /overview.json).
"""

import os
import time

import requests
from flask import Flask, jsonify, render_template_string


def _base(name, default):
    return os.environ.get(name, default).rstrip("/")


GITHUB_API = _base("GITHUB_API", "https://api.github.com")
STRIPE_API = _base("STRIPE_API", "https://api.stripe.com")
USERS_API = _base("USERS_API", "http://user-service.internal:8000/api")
GITHUB_REPO = os.environ.get("GITHUB_REPO", "nodejs/undici")
GITHUB_TOKEN = os.environ.get("GITHUB_TOKEN", "")
STRIPE_API_KEY = os.environ.get("STRIPE_API_KEY", "")
TIMEOUT_S = float(os.environ.get("API_TIMEOUT_S", "10"))

app = Flask(__name__)


class Calls:
    """Makes the page's API calls and remembers how long each took and what the proxy said."""

    def __init__(self):
        self.log = []

    def get(self, url, token=""):
        headers = {"Accept": "application/json", "User-Agent": "sidecache-flask-example"}
        if token:
            headers["Authorization"] = "Bearer " + token
        started = time.perf_counter()
        res = None
        try:
            res = requests.get(url, headers=headers, timeout=TIMEOUT_S)
            res.raise_for_status()
            return res.json()
        except requests.RequestException as err:
            res = getattr(err, "response", None)
            raise ApiError(url, err) from err
        finally:
            self.log.append(
                {
                    "url": url,
                    "status": res.status_code if res is not None else None,
                    "ms": round((time.perf_counter() - started) * 1000, 1),
                    # Set by sidecache: how the cache answered and where the time went.
                    "cache_status": res.headers.get("Cache-Status") if res is not None else None,
                    "via": res.headers.get("Via") if res is not None else None,
                }
            )


class ApiError(Exception):
    def __init__(self, url, err):
        super().__init__(f"{url}: {err}")


def github_section(calls):
    repo = calls.get(f"{GITHUB_API}/repos/{GITHUB_REPO}", GITHUB_TOKEN)
    releases = calls.get(f"{GITHUB_API}/repos/{GITHUB_REPO}/releases?per_page=3", GITHUB_TOKEN)
    return {
        "name": repo.get("full_name"),
        "description": repo.get("description"),
        "stars": repo.get("stargazers_count"),
        "releases": [r.get("tag_name") for r in releases],
    }


def stripe_section(calls):
    balance = calls.get(f"{STRIPE_API}/v1/balance", STRIPE_API_KEY)
    customers = calls.get(f"{STRIPE_API}/v1/customers?limit=3", STRIPE_API_KEY)
    available = balance.get("available") or [{}]
    return {
        "available": available[0].get("amount"),
        "currency": available[0].get("currency"),
        "customers": [c.get("email") for c in customers.get("data", [])],
    }


def users_section(calls):
    # One call for the list, then one per user: the N+1 pattern that makes pages slow.
    listing = calls.get(f"{USERS_API}/v1/users?limit=5")
    users = []
    for u in listing.get("users", []):
        detail = calls.get(f"{USERS_API}/v1/users/{u['id']}")
        users.append({"name": detail.get("name"), "team": detail.get("team")})
    return {"users": users}


def overview():
    calls = Calls()
    started = time.perf_counter()
    sections = {}
    for name, build in (("github", github_section), ("stripe", stripe_section), ("users", users_section)):
        try:
            sections[name] = {"ok": True, "data": build(calls)}
        except ApiError as err:
            sections[name] = {"ok": False, "error": str(err)}
    total_ms = round((time.perf_counter() - started) * 1000, 1)
    return {"sections": sections, "calls": calls.log, "total_ms": total_ms}


PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Overview</title>
<style>
 body { font: 15px/1.4 system-ui, sans-serif; margin: 2rem; max-width: 60rem; }
 section { border: 1px solid #ccc; border-radius: 6px; padding: 0.5rem 1rem; margin: 1rem 0; }
 .error { color: #a00; } table { border-collapse: collapse; font-size: 13px; }
 td, th { padding: 2px 8px; text-align: left; border-bottom: 1px solid #eee; }
</style></head>
<body>
<h1>Overview</h1>
{% set s = o.sections %}
<section id="github"><h2>GitHub</h2>
{% if s.github.ok %}
 <p><b>{{ s.github.data.name }}</b>: {{ s.github.data.description }}
 ({{ s.github.data.stars }} stars)</p>
 <p>Latest releases: {{ s.github.data.releases | join(", ") }}</p>
{% else %}<p class="error">{{ s.github.error }}</p>{% endif %}
</section>
<section id="stripe"><h2>Stripe</h2>
{% if s.stripe.ok %}
 <p>Available balance: {{ s.stripe.data.available }} {{ s.stripe.data.currency }}</p>
 <p>Recent customers: {{ s.stripe.data.customers | join(", ") }}</p>
{% else %}<p class="error">{{ s.stripe.error }}</p>{% endif %}
</section>
<section id="users"><h2>Team</h2>
{% if s.users.ok %}
 <ul>{% for u in s.users.data.users %}<li>{{ u.name }} ({{ u.team }})</li>{% endfor %}</ul>
{% else %}<p class="error">{{ s.users.error }}</p>{% endif %}
</section>
<h2>{{ o.calls | length }} API calls, {{ o.total_ms }} ms</h2>
<table><tr><th>ms</th><th>status</th><th>Cache-Status</th><th>URL</th></tr>
{% for c in o.calls %}<tr><td>{{ c.ms }}</td><td>{{ c.status }}</td>
<td>{{ c.cache_status or "" }}</td><td>{{ c.url }}</td></tr>{% endfor %}
</table>
</body></html>
"""


@app.get("/")
def index():
    return render_template_string(PAGE, o=overview())


@app.get("/overview.json")
def overview_json():
    return jsonify(overview())


@app.get("/healthz")
def healthz():
    return "ok\n"


if __name__ == "__main__":
    app.run(host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "5000")))
