-- POST /api/v1/posts/batch: <items> posts in one request, rotating over several users.
-- args: tokens_file (one access token a line), items
dofile("bench/wrk/common.lua")
local tokens, counter, body = {}, 0, nil

function init(args)
  tokens = read_lines(args[1])
  local items = {}
  for i = 1, tonumber(args[2]) do
    items[i] = string.format(
      '{"title":"Bulk post %d","content":"Written by the bulk create benchmark.","published":true}', i)
  end
  body = "[" .. table.concat(items, ",") .. "]"
end

function request()
  counter = counter + 1
  local headers = {
    ["Authorization"] = "Bearer " .. tokens[counter % #tokens + 1],
    ["Content-Type"] = "application/json",
  }
  return wrk.format("POST", "/api/v1/posts/batch", headers, body)
end
