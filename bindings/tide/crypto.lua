-- tide.crypto: sealing secrets at rest (AES-256-GCM with the configured key, bound to a
-- context), keyed hashes and digests. Backed by C (tide.core); the key never reaches Lua.
--
-- A sealed text opens only with the context it was sealed with (the context is GCM
-- associated data: authenticated, not stored). Name in it everything the secret belongs to,
-- e.g. { "api_keys", user_id, service_name, key_name }: a text copied to another row then
-- does not open there. Texts from before contexts existed ("v1:") are never opened here;
-- `tide reseal` re-seals them.
--
-- Failures are error tables (tide.errors), like every failure a script sees:
-- {code = "TIDE_CRYPTO", status = 500, message = <why>, details = <open's reason>}; a handler
-- may return `nil, err` as it is or map err.details to its own answer.
local core = require "tide.core"
local errors = require "tide.errors"

local type, unpack = type, unpack
local new_error = errors.new

local _M = {}

local function check_context(context, fn)
    if type(context) ~= "table" or #context == 0 then
        error("crypto." .. fn .. ": context must be a non-empty list of strings", 3)
    end
    for i = 1, #context do
        if type(context[i]) ~= "string" then
            error("crypto." .. fn .. ": context[" .. i .. "] must be a string", 3)
        end
    end
end

local function failure(message, reason)
    return new_error("TIDE_CRYPTO", 500, message, reason)
end

-- seal(plain, context) -> sealed text ("v2:" + base64) | nil, err.
-- Raises when no key is configured or on a bad argument.
_M.seal = function(plain, context)
    if type(plain) ~= "string" then error("crypto.seal: plain text must be a string", 2) end
    check_context(context, "seal")
    local sealed, msg = core.seal(plain, unpack(context))
    if not sealed then return nil, failure(msg) end
    return sealed
end

-- open(sealed, context) -> plain | nil, err. err.details is the reason: "legacy" (a v1 text:
-- run `tide reseal`), "unreadable" (another context, tampered, or another key), "malformed"
-- (not a sealed text) or "error".
_M.open = function(sealed, context)
    if type(sealed) ~= "string" then error("crypto.open: sealed text must be a string", 2) end
    check_context(context, "open")
    local plain, msg, reason = core.open(sealed, unpack(context))
    if not plain then return nil, failure(msg, reason) end
    return plain
end

-- keyed_hash(label, s) -> 64 lower-case hex characters: HMAC-SHA256 of s under a key derived
-- from the configured key and label (one label per use). Equal inputs hash equal, so it still
-- finds duplicates, but without the key it cannot be checked against guessed secrets.
_M.keyed_hash = function(label, s)
    if type(label) ~= "string" or label == "" then
        error("crypto.keyed_hash: label must be a non-empty string", 2)
    end
    if type(s) ~= "string" then error("crypto.keyed_hash: argument must be a string", 2) end
    return core.keyed_hash_hex(label, s)
end

-- sha256_hex(s) -> 64 lower-case hex characters (a plain digest: not for secrets)
_M.sha256_hex = function(s)
    if type(s) ~= "string" then error("crypto.sha256_hex: argument must be a string", 2) end
    return core.sha256_hex(s)
end

return _M
