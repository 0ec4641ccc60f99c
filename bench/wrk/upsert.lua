-- PUT /api/v1/tags/batch: <items> tags a request, each user upserting slugs of its own (the
-- first request of a user creates them, the rest replace them), rotating over several users.
-- args: tokens_file (one access token a line), items
dofile("bench/wrk/common.lua")
local tokens, counter, bodies = {}, 0, {}

function init(args)
  tokens = read_lines(args[1])
  for user = 1, #tokens do
    local items = {}
    for i = 1, tonumber(args[2]) do
      items[i] = string.format('{"slug":"bench-u%d-t%d","name":"Bench tag %d"}', user, i, i)
    end
    bodies[user] = "[" .. table.concat(items, ",") .. "]"
  end
end

function request()
  counter = counter + 1
  local user = counter % #tokens + 1
  local headers = {
    ["Authorization"] = "Bearer " .. tokens[user],
    ["Content-Type"] = "application/json",
  }
  return wrk.format("PUT", "/api/v1/tags/batch", headers, bodies[user])
end
