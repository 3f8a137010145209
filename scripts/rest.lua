-- scripts/rest.lua - mounts /rest/v1, tide's PostgREST API (bindings/tide/rest/, docs/rest.md).
-- Delete this file and the bundle serves no /rest/v1 (and needs no policies/exposure.lua).
return require "tide.rest.routes"
