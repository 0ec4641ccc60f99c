-- Shared by every benchmark script: one machine-readable result line from done().
-- Latencies in microseconds; non2xx counts statuses outside 2xx/3xx (wrk's own count).
function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"rps":%.1f,"p50_us":%d,"p99_us":%d,' ..
    '"non2xx":%d,"socket_errors":%d}\n',
    summary.requests, summary.duration, summary.requests / summary.duration * 1e6,
    latency:percentile(50), latency:percentile(99), errors.status,
    errors.connect + errors.read + errors.write + errors.timeout))
end

-- Lines of a text file, for the token and id lists the harness writes.
function read_lines(path)
  local lines = {}
  for line in io.lines(path) do
    if line ~= "" then lines[#lines + 1] = line end
  end
  return lines
end

function split(line)
  local words = {}
  for word in line:gmatch("%S+") do words[#words + 1] = word end
  return words
end
