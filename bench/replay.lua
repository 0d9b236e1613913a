-- Replays pre-signed raw requests: thread N reads `<file>.N` (wrk args: -- <file>), cycling through its own
-- distinct requests. No response() callback, so wrk's own cost stays minimal. With WRK_DELAY_MS set, each
-- connection waits that long between requests (paced load instead of wrk's closed-loop saturation).
local counter = 1

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end

local reqs = {}
local n = 0
local i = 0

function init(args)
  local f = assert(io.open(args[1] .. "." .. tid, "rb"))
  local data = f:read("*a")
  f:close()
  local pos = 1
  local size = #data
  while pos <= size do
    local nl = string.find(data, "\n", pos, true)
    local len = tonumber(string.sub(data, pos, nl - 1))
    n = n + 1
    reqs[n] = string.sub(data, nl + 1, nl + len)
    pos = nl + 1 + len
  end
end

function request()
  i = i + 1
  if i > n then i = 1 end
  return reqs[i]
end

local pace = tonumber(os.getenv("WRK_DELAY_MS") or "")
if pace then
  function delay()
    return pace
  end
end
