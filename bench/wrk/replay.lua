-- wrk script: replays signed /buy requests from a file (path TAB authorization
-- per line); thread i of n takes lines o+i, o+i+n, o+i+2n, ... and counts
-- answers by status. Usage:
--   wrk -t N -s bench/wrk/replay.lua URL -- REQUESTS_FILE TIER_ID N [OFFSET o]

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  lines, counts = {}, {}
  for line in io.lines(args[1]) do
    local path, auth = line:match("^([^\t]+)\t(.+)$")
    lines[#lines + 1] = { path, auth }
  end
  body = '{"tier_id":' .. args[2] .. ',"quantity":1}'
  step = tonumber(args[3])
  index = id + tonumber(args[4] or "0")
end

function request()
  local line = lines[(index % #lines) + 1]
  index = index + step
  return wrk.format("POST", line[1], {
    ["Authorization"] = line[2],
    ["Content-Type"] = "application/json",
  }, body)
end

function response(status)
  counts[status] = (counts[status] or 0) + 1
end

function done()
  local total = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("counts")) do
      total[status] = (total[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(total) do
    parts[#parts + 1] = string.format('"%d": %d', status, n)
  end
  io.write("statuses: {" .. table.concat(parts, ", ") .. "}\n")
end
