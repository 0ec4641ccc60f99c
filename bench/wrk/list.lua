-- GET /api/v1/posts?limit=20&offset=<random 0..max_offset> (the page carries the total).
-- args: max_offset
dofile("bench/wrk/common.lua")
local max_offset

function init(args)
  max_offset = tonumber(args[1])
  math.randomseed(os.time())
end

function request()
  return wrk.format("GET", "/api/v1/posts?limit=20&offset=" .. math.random(0, max_offset))
end
