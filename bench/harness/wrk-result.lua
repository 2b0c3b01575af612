-- What the bench wrk scripts (wrk-report.lua, wrk-keys.lua) share: a per-thread count of responses
-- whose status is not 2xx (wrk itself only counts status > 399), and the `BENCH_RESULT {json}` line
-- from done() with exact percentiles. Loaded with require("wrk-result"): bench/harness/load.ts puts
-- this directory on LUA_PATH. Run with one thread (-t1) or more: counters are summed over threads.

local M = {}
local threads = {}

-- setup(thread), for the script's global setup: remembers every thread, for sum().
function M.setup(thread)
  table.insert(threads, thread)
end

-- Call from init(): the thread's counter starts at zero.
function M.init()
  non2xx = 0
end

-- Call from response(status, ...).
function M.count(status)
  if status < 200 or status > 299 then non2xx = non2xx + 1 end
end

-- The sum over threads of a global counter each thread keeps.
function M.sum(name)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + (thread:get(name) or 0)
  end
  return total
end

-- done(summary, latency) body: prints the line; `extra` is a list of {name, integer} pairs
-- appended after the common fields.
function M.report(summary, latency, extra)
  local e = summary.errors
  local fields = string.format(
    '"requests":%d,"durationUs":%d,"p50Us":%d,"p99Us":%d,"maxUs":%d,"non2xx":%d,' ..
    '"connectErrors":%d,"readErrors":%d,"writeErrors":%d,"timeouts":%d',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    M.sum("non2xx"), e.connect, e.read, e.write, e.timeout)
  for _, field in ipairs(extra or {}) do
    fields = fields .. string.format(',"%s":%d', field[1], field[2])
  end
  io.write("BENCH_RESULT {" .. fields .. "}\n")
end

return M
