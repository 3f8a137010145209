-- tide/rest/csv.lua - /rest/v1's text/csv answers (`Accept: text/csv`), as PostgREST 12
-- gives them: Content-Type `text/csv; charset=utf-8`, a header line of the column names (in
-- select order), then one line per row, "\n" between lines and none after the last, each value
-- as Postgres prints it (its type's text output: `t`/`f`, `2030-05-01`, `{a,b}`; a jsonb as
-- its JSON text), quoted when it is empty or holds a comma, quote, backslash, parenthesis or
-- white space, NULL as nothing between the commas (so NULL and '' differ: `,,` and `,"",`).
--
-- Postgres builds the text (tide.builder's csv option: the record text of each row, as
-- PostgREST does), in the same statement as the JSON answer would be, so the routing,
-- resilience and cache policies, RLS and max_rows apply alike: an answer holds at most
-- max_rows rows, and Range, limit/offset, count=exact and Content-Range work as for JSON.
--
-- Where this differs from PostgREST 12, deliberately (its issue #1374 calls both bugs):
--   * RFC 4180 escapes only: a backslash stays one backslash (PostgREST sends the record
--     text's doubled `\\`), a quote inside quotes is `""` in both;
--   * a header name holding a comma, quote or line break is quoted (PostgREST sends it bare).
-- As in PostgREST, no row means no header either (the names come from the first row): the
-- body is "\n". Errors stay JSON.

local _M = {}

_M.CONTENT_TYPE = "text/csv; charset=utf-8"

-- Marks db.select options (a counted raw select from tide/rest/routes.lua) for a CSV answer.
function _M.select_opts(opts)
    opts.csv = true
    return opts
end

-- The handler's answer for a CSV body (a string from db.select): the headers keep
-- Content-Range and the rest.
function _M.answer(body, status, headers)
    headers["Content-Type"] = _M.CONTENT_TYPE
    return body, status, headers
end

return _M
