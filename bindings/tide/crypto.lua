-- tide.crypto: sealing secrets at rest (AES-256-GCM with the configured key) and digests.
-- Backed by C (tide.core); the key never reaches Lua.
local core = require "tide.core"

local _M = {}

-- encrypt(plain) -> sealed text ("v1:" + base64) | raises when no key is configured
_M.encrypt = function(plain)
  if type(plain) ~= "string" then error("crypto.encrypt: plain text must be a string", 2) end
  return core.encrypt(plain)
end

-- decrypt(sealed) -> plain | nil, err (wrong key, tampered or malformed text)
_M.decrypt = function(sealed)
  if type(sealed) ~= "string" then error("crypto.decrypt: sealed text must be a string", 2) end
  return core.decrypt(sealed)
end

-- sha256_hex(s) -> 64 lower-case hex characters
_M.sha256_hex = function(s)
  if type(s) ~= "string" then error("crypto.sha256_hex: argument must be a string", 2) end
  return core.sha256_hex(s)
end

return _M
