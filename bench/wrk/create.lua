-- POST /api/v1/posts with a bearer token, rotating over several users.
-- args: tokens_file (one access token a line)
dofile("bench/wrk/common.lua")
local tokens, counter = {}, 0

function init(args)
  tokens = read_lines(args[1])
  math.randomseed(os.time())
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"title":"Bench post %d","content":"Written by the create benchmark.","published":true}',
    counter)
  local headers = {
    ["Authorization"] = "Bearer " .. tokens[counter % #tokens + 1],
    ["Content-Type"] = "application/json",
  }
  return wrk.format("POST", "/api/v1/posts", headers, body)
end
