-- tide/errors.lua - shared error helpers for the Lua half of the runtime.
--
-- Two kinds of failure (see STYLE.md):
--   * misuse (a bug in the calling script: wrong argument type, unknown option, bad filter)
--     raises a Lua error. errors.misuse(msg) blames the first stack frame OUTSIDE
--     bindings/tide/*.lua, so the position in the message is the script author's line, not a
--     line deep inside the builder; tide.core's C checks raise through it too (l_core.c's
--     tide__l_misuse()), so one rule positions every misuse error;
--   * operational failure returns `nil, err` with err = {code, message, details, hint, status};
--     errors.new() builds such a table and tide.core's push_err is its C twin. It is the one
--     failure shape scripts see (tide.db, tide.validate, tide.crypto, tide.cache, tide.json,
--     tide.http, scripts/_common.lua) and return; tide.boot turns it into the response.
--     tide.db adds retry_after (seconds) when a breaker refused: a 503 with it is answered
--     with Retry-After.

local getinfo = debug.getinfo
local error, find, type, setmetatable, getmetatable = error, string.find, type, setmetatable,
    getmetatable

local _M = {}

-- True when a chunk source belongs to this directory (bindings/tide/*.lua, and its folders such
-- as tide/rest/).
local function internal(source)
    return type(source) == "string" and find(source, "[/\\]tide[/\\][%w_/\\]+%.lua$") ~= nil
        or source == "=[C]"
end

-- Raises msg as a Lua error positioned at the first caller outside tide's own Lua modules.
-- Never returns.
function _M.misuse(msg)
    local level = 2
    while true do
        local info = getinfo(level, "S")
        if info == nil then
            -- Only tide frames on the stack (e.g. a unit test calling an internal helper):
            -- report without a position rather than a misleading one.
            error(msg, 0)
        end
        if not internal(info.source) then
            break
        end
        level = level + 1
    end
    -- error()'s level counts from the function that calls error: this one is level 1 and
    -- getinfo's `level` above counted the same way.
    error(msg, level)
end

-- Every error table carries this metatable, so tide.boot can tell a handler that returned one
-- as its body (`return err` or `return http.error(...)`, the `nil,` forgotten) from a body to
-- send. It lives in the registry under "tide.error": tide.core's C functions (a Postgres error,
-- a refused parameter) set the same one on the tables they make, whichever side creates it.
local registry = debug.getregistry()
local error_mt = registry["tide.error"]
if type(error_mt) ~= "table" then
    error_mt = { __name = "tide.error" }
    registry["tide.error"] = error_mt
end
_M.error_mt = error_mt

-- True when v is an error table (made here or by tide.core).
function _M.is_error(v)
    return type(v) == "table" and getmetatable(v) == error_mt
end

-- Returns an operational error table. details and hint may be nil. The one constructor on the
-- Lua side; tide.core's push_err is its C twin (same fields, same metatable).
function _M.new(code, status, message, details, hint)
    return setmetatable({ code = code, status = status, message = message, details = details,
                          hint = hint }, error_mt)
end

return _M
