-- wrk script: POST request bodies read from $WRK_BODIES (one JSON body per
-- line), in rotation, so the server sees varied real complaints.
local bodies = {}
local path = os.getenv("WRK_BODIES")
for line in io.lines(path) do
  bodies[#bodies + 1] = line
end
local i = 0
request = function()
  i = i % #bodies + 1
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, bodies[i])
end
