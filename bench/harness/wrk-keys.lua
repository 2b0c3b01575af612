-- wrk script for the entries sweep (bench/entries.ts): requests over a key space instead of one path.
-- Input (environment):
--   BENCH_KEYS_PREFIX  path before the key number, e.g. `/origin/small/k`
--   BENCH_KEYS_FROM, BENCH_KEYS_TO  the key range [from, to)
--   BENCH_KEYS_MODE    `fill`: keys from..to-1 in order, pass after pass, until the harness stops
--                      wrk (it watches the entry count on /metrics);
--                      `random`: a uniformly random key below `to` per request (hits on a filled cache)
--   BENCH_HOST         the Host header
-- Output: one line `BENCH_RESULT {json}` from done() (wrk-result.lua), the same fields as
-- wrk-report.lua, plus `filled`, the fill responses counted.

local result = require("wrk-result")

local prefix = os.getenv("BENCH_KEYS_PREFIX") or "/"
local from = tonumber(os.getenv("BENCH_KEYS_FROM") or "0")
local to = tonumber(os.getenv("BENCH_KEYS_TO") or "1")
local mode = os.getenv("BENCH_KEYS_MODE") or "random"
local host = os.getenv("BENCH_HOST")
local headers = {}
if host and host ~= "" then headers["Host"] = host end

setup = result.setup

function init(args)
  result.init()
  filled = 0
  nextKey = from
  verified = false
  math.randomseed(os.time())
end

function request()
  local key
  if mode == "fill" then
    -- wrk 4.x calls request() once on thread 1's state right after init() to check the request
    -- (script_verify_request in wrk.c) and never sends that one: without this, the first key of
    -- every fill was never requested (the "missed key" of the entries sweep; an origin that logs
    -- its paths sees k1 first). So the first call does not advance. The range is still walked
    -- pass after pass (keys already stored are hits) until the harness stops wrk at the count.
    key = nextKey
    if not verified then
      verified = true
      return wrk.format("GET", prefix .. key, headers)
    end
    nextKey = nextKey + 1
    if nextKey >= to then nextKey = from end
  else
    key = math.random(0, to - 1)
  end
  return wrk.format("GET", prefix .. key, headers)
end

function response(status, headers, body)
  result.count(status)
  if mode == "fill" then filled = filled + 1 end
end

function done(summary, latency, requests)
  result.report(summary, latency, { { "filled", result.sum("filled") } })
end
