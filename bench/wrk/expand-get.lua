-- GET /api/v1/posts/{id}?expand=comments, anonymous, random published ids (5 comments each).
-- args: max_id unpublished_every
dofile("bench/wrk/common.lua")
local max_id, every

function init(args)
  max_id, every = tonumber(args[1]), tonumber(args[2])
  math.randomseed(os.time())
end

function request()
  local id
  repeat id = math.random(1, max_id) until id % every ~= 0
  return wrk.format("GET", "/api/v1/posts/" .. id .. "?expand=comments")
end
