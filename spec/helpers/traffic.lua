-- spec/helpers/traffic.lua - steady, bounded client traffic for reload_spec, run as its own
-- process so it overlaps the reloads the spec triggers:
--   luajit spec/helpers/traffic.lua COUNT PAUSE_SECONDS TOKEN PATH [PATH...]
-- Sends COUNT requests (cycling through the paths) over keep-alive connections, opening a
-- fresh one every 25 requests and whenever the server says Connection: close; pauses between
-- requests. Prints "ready" first, then one summary line:
--   done total=N ok=N failed=N statuses=200:N,... first_error=...
-- A request counts as ok only with a 2xx answer; a socket error or timeout is a failure.

package.path = "./?.lua;" .. package.path
local socket = require "socket"
local http = require "spec.helpers.http"

local count = assert(tonumber(arg[1]), "COUNT")
local pause = assert(tonumber(arg[2]), "PAUSE_SECONDS")
local token = assert(arg[3], "TOKEN")
local paths = {}
for i = 4, #arg do paths[#paths + 1] = arg[i] end
assert(#paths > 0, "PATH")
assert(count <= 10000, "COUNT is bounded")

io.stdout:write("ready\n")
io.stdout:flush()

local ok, failed, statuses, first_error = 0, 0, {}, nil
local sock, used = nil, 0
local deadline = socket.gettime() + 120

for i = 1, count do
    if socket.gettime() > deadline then
        failed = failed + (count - i + 1)
        first_error = first_error or "deadline passed"
        break
    end
    if not sock or used >= 25 then
        if sock then sock:close() end
        local okc, s = pcall(http.connect, nil, 10)
        sock, used = okc and s or nil, 0
    end
    local status, headers
    if sock then
        local path = paths[(i - 1) % #paths + 1]
        local sent = sock:send(http.build("GET", path, { token = token }))
        if sent then
            status, headers = http.read_response(sock)
        else
            headers = "send failed"
        end
    else
        headers = "connect failed"
    end
    used = used + 1
    if status then
        statuses[status] = (statuses[status] or 0) + 1
        if status >= 200 and status < 300 then ok = ok + 1 else failed = failed + 1 end
        if (headers.connection or ""):lower():find("close") then
            sock:close()
            sock = nil
        end
        if (status < 200 or status >= 300) and not first_error then
            first_error = "status " .. status .. " on request " .. i
        end
    else
        failed = failed + 1
        first_error = first_error or ("request " .. i .. ": " .. tostring(headers))
        if sock then sock:close() end
        sock = nil
    end
    if pause > 0 then socket.sleep(pause) end
end
if sock then sock:close() end

local parts = {}
for status, n in pairs(statuses) do parts[#parts + 1] = status .. ":" .. n end
table.sort(parts)
io.stdout:write(string.format("done total=%d ok=%d failed=%d statuses=%s first_error=%s\n",
                              count, ok, failed, table.concat(parts, ","), first_error or "none"))
io.stdout:flush()
