-- tide/lazy.lua - a module required on first use rather than when the requiring module loads:
-- tide.core exists only inside a tide Lua state (the unit specs load tide.boot and tide.db
-- without it and hand them a fake), and tide.db needs policies/routing.lua only at its first
-- query.
--
--   local get, set = lazy.require(name)
--       get()  -> the module, required on the first call and kept
--       set(m) -> replaces it (unit specs pass a fake; nil requires the real one again)
-- Each call keeps its own slot: a fake set through one module does not leak into another.

local require = require

local _M = {}

function _M.require(name)
    local mod
    local function get()
        if mod == nil then
            mod = require(name)
        end
        return mod
    end
    local function set(m)
        mod = m
    end
    return get, set
end

return _M
