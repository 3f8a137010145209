-- policies/sandbox.lua - what the bundle's scripts may reach and how long they may run.
-- Hot-reloaded with SIGHUP like the other policies; `tide check` prints the effect.
--
-- allow       modules the scripts need beyond the sandbox (README "When a script
--             misbehaves"): "io" (blocking file and pipe I/O, loadfile, dofile), "os"
--             (os.exit, os.execute, ...), "debug" (all of debug.*; debug.traceback is always
--             there), "ffi". Each one lets a script block or end every request: name only
--             what a script really needs.
-- max_cpu_ms  a route's own Lua-time budget per request, in ms, over script.max_cpu_ms
--             (the config file's default, 500 ms): ["METHOD /pattern"] = ms. A request past
--             its budget is stopped with 500 TIDE_SCRIPT_TIMEOUT.
-- quarantine  a route stopped `hits` times within `window` seconds answers 503
--             TIDE_ROUTE_QUARANTINED with Retry-After for `cool_down` seconds (or until the
--             next reload); false turns it off.
return {
    allow = {},
    max_cpu_ms = {},
    quarantine = { hits = 5, window = 10, cool_down = 60 },
}
