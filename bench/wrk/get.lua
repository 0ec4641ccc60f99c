-- GET /api/v1/posts/{id}, anonymous, random ids that exist and are published.
-- args: max_id unpublished_every [query] (bench/seed.py leaves every n-th post unpublished;
-- query, e.g. expand=comments, is appended to every request)
dofile("bench/wrk/common.lua")
local max_id, every, query

function init(args)
  max_id, every = tonumber(args[1]), tonumber(args[2])
  query = args[3] and ("?" .. args[3]) or ""
  math.randomseed(os.time())
end

function request()
  local id
  repeat id = math.random(1, max_id) until id % every ~= 0
  return wrk.format("GET", "/api/v1/posts/" .. id .. query)
end
