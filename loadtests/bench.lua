-- wrk script of `python -m loadtests.bench`.
-- The request comes from the command line after `--`: a method, an Authorization header
-- value or "-", a JSON body or "-". The summary goes out as one line the bench reads, so
-- that no figure is parsed from wrk's human-readable report.

function init(args)
  wrk.method = args[1] or "GET"
  if args[2] and args[2] ~= "-" then
    wrk.headers["Authorization"] = args[2]
  end
  if args[3] and args[3] ~= "-" then
    wrk.body = args[3]
    wrk.headers["Content-Type"] = "application/json"
  end
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    "BENCH-RESULT {\"requests\": %d, \"duration_us\": %d, \"status_errors\": %d, " ..
    "\"socket_errors\": %d, \"p50_ms\": %.3f, \"p99_ms\": %.3f, \"max_ms\": %.3f}\n",
    summary.requests, summary.duration, errors.status,
    errors.connect + errors.read + errors.write + errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000
  ))
end
