-- wrk: each request presents a key of the fixture (file in HK_KEYS_FILE):
-- a random one, or with HK_WRK_ORDER=seq the keys in order (warm-up).
local keys = {}
for line in io.lines(os.getenv("HK_KEYS_FILE")) do
  if #line == 53 then keys[#keys + 1] = line end
end
local seq = os.getenv("HK_WRK_ORDER") == "seq"
local i = 0
math.randomseed(os.time())
request = function()
  local k
  if seq then
    i = i % #keys + 1
    k = keys[i]
  else
    k = keys[math.random(#keys)]
  end
  return wrk.format("GET", nil, { ["X-API-Key"] = k })
end
