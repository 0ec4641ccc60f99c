-- GET /api/v1/posts?published=true&sort=-created_at&limit=20
dofile("bench/wrk/common.lua")

function request()
  return wrk.format("GET", "/api/v1/posts?published=true&sort=-created_at&limit=20")
end
