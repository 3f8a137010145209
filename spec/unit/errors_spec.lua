-- spec/unit/errors_spec.lua - one marker for every error table: the Lua constructor and the
-- C side (tide.core's push_err, which takes the metatable from the registry under
-- "tide.error") agree, so tide.boot recognises an error table whoever made it.

local errors = require "tide.errors"

describe("tide.errors", function()
    it("marks its tables with the registry's tide.error metatable", function()
        local e = errors.new("X_CODE", 409, "msg")
        assert.are.equal(debug.getregistry()["tide.error"], getmetatable(e))
        assert.is_true(errors.is_error(e))
        assert.are.same({ code = "X_CODE", status = 409, message = "msg" },
                        { code = e.code, status = e.status, message = e.message })
    end)

    it("recognises a table marked the way C marks it, and nothing else", function()
        local c_made = setmetatable({ code = "22012", status = 400 },
                                    debug.getregistry()["tide.error"])
        assert.is_true(errors.is_error(c_made))
        assert.is_false(errors.is_error({ code = "22012", status = 400 }))
        assert.is_false(errors.is_error("22012"))
        assert.is_false(errors.is_error(nil))
    end)
end)
