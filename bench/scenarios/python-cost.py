"""Where a Python ``requests.get`` through sidecache's interception spends its time.

Run by bench/scenarios/python-cost.ts with one JSON argument:
  {"origin": "https://localhost:PORT", "originCa": PATH, "proxy": "http://127.0.0.1:PORT",
   "proxyCa": PATH, "route": "http://127.0.0.1:PORT/origin", "calls": N, "profile": bool}
Prints one line ``PYCOST {json}``: per-mode timings (ms per call: mean, p50, p90), a step-by-step
breakdown of one intercepted call done by hand with the standard library (TCP connect, CONNECT,
SSL context + CA load, TLS handshake, request/response), and optionally the top functions of a
cProfile run over the intercepted ``requests.get`` loop.
"""

import cProfile
import io
import json
import os
import pstats
import socket
import ssl
import statistics
import sys
import time
from urllib.parse import urlsplit

import requests

CFG = json.loads(sys.argv[1])
N = int(CFG["calls"])
PATH = "/item"
# Only what the test passes: no proxy from the environment, no netrc lookups changing the picture.
for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "NO_PROXY", "no_proxy"):
    os.environ.pop(var, None)


def stats(samples):
    ms = sorted(s * 1000 for s in samples)
    return {
        "calls": len(ms),
        "mean": statistics.fmean(ms),
        "p50": ms[len(ms) // 2],
        "p90": ms[min(len(ms) - 1, int(len(ms) * 0.9))],
    }


def timed(fn, n=N, warm=3):
    for _ in range(warm):
        fn()
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return stats(out)


def check(res):
    if res.status_code != 200 or len(res.content) == 0:
        raise SystemExit(f"unexpected answer {res.status_code}")


proxies = {"https": CFG["proxy"], "http": CFG["proxy"]}
origin_url = CFG["origin"] + PATH
route_url = CFG["route"] + PATH


def intercept_get():
    check(requests.get(origin_url, proxies=proxies, verify=CFG["proxyCa"], timeout=10))


def direct_get():
    check(requests.get(origin_url, verify=CFG["originCa"], timeout=10))


def route_get():
    check(requests.get(route_url, timeout=10))


# How deployments usually trust an extra CA: the system bundle with sidecache's CA appended.
SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
combined_ca = None
if os.path.exists(SYSTEM_BUNDLE):
    combined_ca = os.path.join(os.path.dirname(CFG["proxyCa"]), "system-plus-sidecache.pem")
    with open(combined_ca, "wb") as out:
        for path in (SYSTEM_BUNDLE, CFG["proxyCa"]):
            with open(path, "rb") as f:
                out.write(f.read().rstrip(b"\n") + b"\n")


def intercept_bundle_get():
    check(requests.get(origin_url, proxies=proxies, verify=combined_ca, timeout=10))


session = requests.Session()


def intercept_session_get():
    check(session.get(origin_url, proxies=proxies, verify=CFG["proxyCa"], timeout=10))


# CLOCK_MONOTONIC in µs, the clock V8's --cpu-prof timestamps use: the harness keeps only the
# sidecache profile samples taken while this loop ran.
for _ in range(3):
    intercept_get()  # warm-up outside the window: leaf minted, modules loaded, pool warm
window_start_us = time.monotonic_ns() // 1000
intercept_stats = timed(intercept_get, warm=0)
window_end_us = time.monotonic_ns() // 1000
modes = {
    "requests.get via HTTPS_PROXY (intercept)": intercept_stats,
    "requests.get via reverse route (http)": timed(route_get),
    "requests.get direct to the TLS origin": timed(direct_get),
    "Session().get via HTTPS_PROXY (intercept, reused)": timed(intercept_session_get),
}
if combined_ca:
    modes["requests.get via HTTPS_PROXY, verify=system bundle+CA"] = timed(intercept_bundle_get)

# One intercepted call by hand, step by step (standard library only).
origin = urlsplit(CFG["origin"])
proxy = urlsplit(CFG["proxy"])
authority = f"{origin.hostname}:{origin.port}"
steps = {k: [] for k in ("tcp connect", "CONNECT + 200", "SSL context + CA load", "TLS handshake", "GET + response", "total")}


def read_head(sock):
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            raise SystemExit("connection closed before the end of the head")
        buf += chunk
    return buf


def by_hand():
    t0 = time.perf_counter()
    sock = socket.create_connection((proxy.hostname, proxy.port))
    t1 = time.perf_counter()
    sock.sendall(f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode())
    head = read_head(sock)
    if not head.startswith(b"HTTP/1.1 200"):
        raise SystemExit(f"CONNECT answered {head[:40]!r}")
    t2 = time.perf_counter()
    ctx = ssl.create_default_context(cafile=CFG["proxyCa"])
    t3 = time.perf_counter()
    tls = ctx.wrap_socket(sock, server_hostname=origin.hostname)
    t4 = time.perf_counter()
    tls.sendall(f"GET {PATH} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n".encode())
    body = b""
    while True:
        chunk = tls.recv(65536)
        if not chunk:
            break
        body += chunk
    t5 = time.perf_counter()
    tls.close()
    if b" 200 " not in body[:20]:
        raise SystemExit(f"GET answered {body[:40]!r}")
    for name, d in zip(steps, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t5 - t0)):
        steps[name].append(d)


for _ in range(3):
    by_hand()
for k in steps:
    steps[k].clear()
for _ in range(N):
    by_hand()
breakdown = {k: stats(v) for k, v in steps.items()}

# The same context built once and reused: what creating it per call costs.
ctx_once = ssl.create_default_context(cafile=CFG["proxyCa"])
ctx_cost = timed(lambda: ssl.create_default_context(cafile=CFG["proxyCa"]), n=N)
default_ctx_cost = timed(lambda: ssl.create_default_context(), n=N)
certifi_cost = None
try:
    import certifi

    certifi_cost = timed(lambda: ssl.create_default_context(cafile=certifi.where()), n=N)
except ImportError:
    pass

profile = None
if CFG.get("profile"):
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(N):
        intercept_get()
    prof.disable()
    out = io.StringIO()
    st = pstats.Stats(prof, stream=out)
    st.sort_stats("tottime").print_stats(18)
    profile = out.getvalue()

print(
    "PYCOST "
    + json.dumps(
        {
            "python": sys.version.split()[0],
            "requests": requests.__version__,
            "openssl": ssl.OPENSSL_VERSION,
            "modes": modes,
            "byHand": breakdown,
            "sslContextWithCaFile": ctx_cost,
            "sslContextSystemDefault": default_ctx_cost,
            "sslContextCertifi": certifi_cost,
            "profile": profile,
            "interceptWindowUs": [window_start_us, window_end_us],
        }
    ),
    flush=True,
)
