-- Follows next_cursor from the first page to the last, then starts again. wrk runs one
-- thread (-t1), so the cursor is shared by its connections: the walk goes ever deeper.
dofile("bench/wrk/common.lua")
local cursor = nil

local function escape(value)
  return (value:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

function request()
  local path = "/api/v1/posts?limit=20"
  if cursor then path = path .. "&cursor=" .. escape(cursor) end
  return wrk.format("GET", path)
end

function response(status, headers, body)
  if status ~= 200 then
    cursor = nil
    return
  end
  cursor = body:match('"next_cursor":"([^"]+)"')
end
