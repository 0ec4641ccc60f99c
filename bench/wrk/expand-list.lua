-- GET /api/v1/posts?limit=20&offset=<random>&expand=owner,comments.author: a page of posts
-- with their owners and comments (5 each) with their authors, the total in the same answer.
-- args: max_offset
dofile("bench/wrk/common.lua")
local max_offset

function init(args)
  max_offset = tonumber(args[1])
  math.randomseed(os.time())
end

function request()
  local offset = math.random(0, max_offset)
  return wrk.format("GET", "/api/v1/posts?limit=20&offset=" .. offset .. "&expand=owner,comments.author")
end
