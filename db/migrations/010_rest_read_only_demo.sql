-- 010_rest_read_only_demo.sql - a read that would write, to show that /rest/v1's reads run in
-- a read-only transaction (as PostgREST 12's do); spec/integration/rest_rpc_spec.lua uses it.
--
--   note_search(search_type)   STABLE scalar: how many searches of that type the caller has
--                              made. It also records one through the VOLATILE record_search
--                              (008), which a STABLE function may call: only the read-only
--                              transaction keeps a GET of it from writing.
--   search_notes               a view (security_invoker) of one row, note_search('view'):
--                              the same through GET /rest/v1/search_notes
-- SECURITY INVOKER, empty search_path; EXECUTE (and SELECT on the view) for authenticated
-- and service_role only, like the functions of 008.

CREATE FUNCTION public.note_search(search_type text) RETURNS bigint
LANGUAGE plpgsql STABLE SECURITY INVOKER
SET search_path = ''
AS $$
BEGIN
    PERFORM public.record_search(note_search.search_type, '{"noted": true}'::jsonb);
    RETURN (SELECT pg_catalog.count(*) FROM public.search_history h
            WHERE h.search_type = note_search.search_type);
END
$$;

CREATE VIEW public.search_notes WITH (security_invoker = true) AS
    SELECT public.note_search('view') AS searches;

REVOKE ALL ON FUNCTION public.note_search(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.note_search(text) TO authenticated, service_role;
REVOKE ALL ON public.search_notes FROM PUBLIC;
GRANT SELECT ON public.search_notes TO authenticated, service_role;
