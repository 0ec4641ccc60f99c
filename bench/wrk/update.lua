-- PATCH /api/v1/posts/{id} with the owner's token on one of the owner's posts.
-- args: owned_file (lines of "<token> <post id> <post id> ...", one user a line)
dofile("bench/wrk/common.lua")
local owners, counter = {}, 0

function init(args)
  for _, line in ipairs(read_lines(args[1])) do
    local words = split(line)
    local token = table.remove(words, 1)
    owners[#owners + 1] = { token = token, ids = words }
  end
  math.randomseed(os.time())
end

function request()
  counter = counter + 1
  local owner = owners[math.random(1, #owners)]
  local id = owner.ids[math.random(1, #owner.ids)]
  local headers = {
    ["Authorization"] = "Bearer " .. owner.token,
    ["Content-Type"] = "application/json",
  }
  return wrk.format("PATCH", "/api/v1/posts/" .. id, headers,
    string.format('{"title":"Edited %d"}', counter))
end
