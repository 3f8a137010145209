-- 011_write_refused.sql - the SQLSTATEs a refused write aborts with (tide.builder, tide.db).
--
-- A single-row write that matched several rows, and a write that matched more rows than its
-- max_affected, must roll back in the same statement (one round trip, no explicit
-- transaction), and tide.db must tell them from any other failure by code alone. Plain SQL
-- cannot raise, so the statement's CASE calls this function in the branch that refuses:
--   TD001  a single-row write matched n > 1 rows      (tide.db: TIDE_MULTIPLE_ROWS, 406)
--   TD002  a write matched n rows, more than allowed  (tide.db: TIDE_MAX_AFFECTED, 400)
-- Class TD is not one Postgres uses, so no other failure carries these codes. DETAIL is n (the
-- rows the statement matched) as decimal text; the message is for people.
--
-- Only those two codes are raised (anything else is 22023), so a caller gains nothing by
-- calling it directly. Every role tide runs statements as needs USAGE on tide_meta (to resolve
-- the name when the statement is parsed) and EXECUTE on this function, and nothing else there.

CREATE OR REPLACE FUNCTION tide_meta.write_refused(code text, n bigint) RETURNS text
LANGUAGE plpgsql
SET search_path = ''
AS $$
BEGIN
    IF code = 'TD001' THEN
        RAISE EXCEPTION USING ERRCODE = 'TD001', DETAIL = n::text,
            MESSAGE = 'a single-row write matched ' || n || ' rows; nothing was changed';
    ELSIF code = 'TD002' THEN
        RAISE EXCEPTION USING ERRCODE = 'TD002', DETAIL = n::text,
            MESSAGE = 'the write matched ' || n || ' rows, more than allowed; nothing was changed';
    END IF;
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'tide_meta.write_refused: unknown code';
END
$$;

REVOKE ALL ON FUNCTION tide_meta.write_refused(text, bigint) FROM PUBLIC;
GRANT USAGE ON SCHEMA tide_meta TO anon, authenticated, service_role;
GRANT EXECUTE ON FUNCTION tide_meta.write_refused(text, bigint) TO anon, authenticated, service_role;
