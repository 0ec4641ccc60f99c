-- GET /api/v1/posts/{id}, anonymous, random ids that exist and are published.
-- args: max_id unpublished_every (bench/seed.py leaves every n-th post unpublished)
dofile("bench/wrk/common.lua")
local max_id, every

function init(args)
  max_id, every = tonumber(args[1]), tonumber(args[2])
  math.randomseed(os.time())
end

function request()
  local id
  repeat id = math.random(1, max_id) until id % every ~= 0
  return wrk.format("GET", "/api/v1/posts/" .. id)
end
