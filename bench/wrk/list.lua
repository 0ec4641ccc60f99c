-- GET /api/v1/posts?limit=20&offset=<random 0..max_offset> (the page carries the total).
-- args: max_offset [query] (appended to every request, e.g. expand=owner,comments.author)
dofile("bench/wrk/common.lua")
local max_offset, query

function init(args)
  max_offset = tonumber(args[1])
  query = args[2] and ("&" .. args[2]) or ""
  math.randomseed(os.time())
end

function request()
  local offset = math.random(0, max_offset)
  return wrk.format("GET", "/api/v1/posts?limit=20&offset=" .. offset .. query)
end
