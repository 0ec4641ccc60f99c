-- GET /api/v1/posts/changes?since=<token>&limit=1000, anonymous: the same request every time,
-- the CHANGED_POSTS (1,000) posts changed since the token (bench/fixtures.py made it).
-- args: the token (URL-safe base64). An answer that does not end with has_more false means
-- posts were written after the fixture (the rows read would differ): counted as non-2xx.
dofile("bench/wrk/common.lua")
local path
local threads = {}
unexpected = 0  -- per thread; done() adds them up

function setup(thread)
  threads[#threads + 1] = thread
end

function init(args)
  path = "/api/v1/posts/changes?limit=1000&since=" .. args[1]
end

function request()
  return wrk.format("GET", path)
end

function response(status, headers, body)
  if status == 200 and not body:find('"has_more":false}', -32, true) then
    unexpected = unexpected + 1
  end
end

local report = done
function done(summary, latency, requests)
  for _, thread in ipairs(threads) do
    summary.errors.status = summary.errors.status + (thread:get("unexpected") or 0)
  end
  report(summary, latency, requests)
end
