-- wrk script of the load generator (bench/harness/load.ts).
-- Input (environment): BENCH_REQUEST_TARGET, the request-target to send (origin-form `/origin/x`
-- or absolute-form `http://127.0.0.1:PORT/x` for forward-proxy scenarios); BENCH_HOST, the Host header;
-- BENCH_ACCEPT_ENCODING, an Accept-Encoding header (none when empty).
-- Output: one line `BENCH_RESULT {json}` from done() (wrk-result.lua), with exact percentiles and a
-- count of responses whose status is not 2xx.

local result = require("wrk-result")

local target = os.getenv("BENCH_REQUEST_TARGET")
local host = os.getenv("BENCH_HOST")
if target and target ~= "" then wrk.path = target end
if host and host ~= "" then wrk.headers["Host"] = host end
local acceptEncoding = os.getenv("BENCH_ACCEPT_ENCODING")
if acceptEncoding and acceptEncoding ~= "" then wrk.headers["Accept-Encoding"] = acceptEncoding end

setup = result.setup

function init(args)
  result.init()
end

function response(status, headers, body)
  result.count(status)
end

function done(summary, latency, requests)
  result.report(summary, latency)
end
