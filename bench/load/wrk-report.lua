-- wrk script used by bench/load/wrk.ts.
-- Input (environment): BENCH_REQUEST_TARGET, the request-target to send (origin-form `/origin/x`
-- or absolute-form `http://127.0.0.1:PORT/x` for forward-proxy scenarios); BENCH_HOST, the Host header.
-- Output: one line `BENCH_RESULT {json}` from done(), with exact percentiles and a count of
-- responses whose status is not 2xx (wrk itself only counts status > 399).

local target = os.getenv("BENCH_REQUEST_TARGET")
local host = os.getenv("BENCH_HOST")
if target and target ~= "" then wrk.path = target end
if host and host ~= "" then wrk.headers["Host"] = host end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  non2xx = 0
end

function response(status, headers, body)
  if status < 200 or status > 299 then non2xx = non2xx + 1 end
end

function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do
    bad = bad + (thread:get("non2xx") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"durationUs":%d,"p50Us":%d,"p99Us":%d,"non2xx":%d,' ..
    '"connectErrors":%d,"readErrors":%d,"writeErrors":%d,"timeouts":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), bad,
    e.connect, e.read, e.write, e.timeout))
end
