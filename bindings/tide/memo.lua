-- tide/memo.lua - bounded memo tables for values computed from strings that come back on every
-- request (identifiers, column lists, ORDER BY clauses, JSON object keys, content types).
-- A memo that holds `limit` entries starts over empty, so keys from clients cannot grow it
-- without bound, and the keys that matter are back after one request.
--
--   local m = memo.new(limit)
--   m.map[k]             -> the remembered value or nil (read the map directly on hot paths)
--   memo.put(m, k, v)    -> v, remembered under k

local _M = {}

function _M.new(limit)
    return { map = {}, size = 0, limit = limit }
end

function _M.put(m, k, v)
    if m.size >= m.limit then
        m.map, m.size = {}, 0
    end
    m.map[k] = v
    m.size = m.size + 1
    return v
end

return _M
