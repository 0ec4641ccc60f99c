-- GET /api/compat/json-server/posts?_start=<random 0..max_offset>&_end=<start + 20>: the list
-- endpoint's page through the json-server dialect (a bare array, X-Total-Count).
-- args: max_offset
dofile("bench/wrk/common.lua")
local max_offset

function init(args)
  max_offset = tonumber(args[1])
  math.randomseed(os.time())
end

function request()
  local start = math.random(0, max_offset)
  return wrk.format("GET", "/api/compat/json-server/posts?_start=" .. start .. "&_end=" .. (start + 20))
end
