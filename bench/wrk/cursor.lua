-- Follows next_cursor page after page (keyset pages, no total). wrk runs one thread (-t1),
-- so the cursor is shared by its connections and the walk goes ever deeper; at the last page
-- it starts again. args: the first page's next_cursor (fetched by bench/rounds.py), so no
-- request of the run is a first page (that one counts the total, like `list`).
dofile("bench/wrk/common.lua")
local start, cursor, query

function init(args)
  start = args[1]
  cursor = start
  query = args[2] and ("&" .. args[2]) or ""
end

local function escape(value)
  return (value:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

function request()
  return wrk.format("GET", "/api/v1/posts?limit=20&cursor=" .. escape(cursor) .. query)
end

function response(status, headers, body)
  cursor = status == 200 and body:match('"next_cursor":"([^"]+)"') or start
end
