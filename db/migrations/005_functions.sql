-- 005_functions.sql - RPC functions for the business scripts (db.rpc / POST /rest/v1/rpc/:fn).
--
--   user_stats()                         json counts for the caller (RLS applies)
--   search_trips(q, status, lim, off)    trips the caller can see matching q, newest first
--   match_destinations(query_embedding, match_count, match_threshold)
--                                        nearest destinations by cosine similarity (HNSW)
-- All are SECURITY INVOKER: they run as the caller, so RLS and grants apply unchanged.
-- EXECUTE is granted to anon, authenticated and service_role; user_stats and search_trips
-- need a signed-in caller and raise 42501 without one.

-- ---------------------------------------------------------------------------------------------
-- {trip_count, shared_trip_count, search_count, api_key_count, upcoming_trip_count}
--   trip_count           trips the caller owns
--   shared_trip_count    trips shared with the caller (any permission level)
--   search_count         the caller's search_history rows
--   api_key_count        the caller's API keys (active or not)
--   upcoming_trip_count  owned or shared trips starting today or later, not cancelled/completed
CREATE FUNCTION public.user_stats() RETURNS json
LANGUAGE plpgsql STABLE SECURITY INVOKER
SET search_path = ''
AS $$
DECLARE
    uid uuid := auth.uid();
    out json;
BEGIN
    IF uid IS NULL THEN
        RAISE EXCEPTION 'user_stats needs a signed-in user'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT pg_catalog.json_build_object(
        'trip_count',
            (SELECT pg_catalog.count(*) FROM public.trips t WHERE t.user_id = uid),
        'shared_trip_count',
            (SELECT pg_catalog.count(*) FROM public.trip_collaborators c
              JOIN public.trips t ON t.id = c.trip_id
             WHERE c.user_id = uid AND t.user_id <> uid),
        'search_count',
            (SELECT pg_catalog.count(*) FROM public.search_history s WHERE s.user_id = uid),
        'api_key_count',
            (SELECT pg_catalog.count(*) FROM public.api_keys k WHERE k.user_id = uid),
        'upcoming_trip_count',
            (SELECT pg_catalog.count(*) FROM public.trips t   -- RLS: owned or shared
              WHERE t.start_date >= CURRENT_DATE
                AND t.status NOT IN ('cancelled', 'completed')))
    INTO out;
    RETURN out;
END
$$;

-- ---------------------------------------------------------------------------------------------
-- Trips the caller can see (own and shared) whose name, destination or notes contain q
-- (case-insensitive, q matched literally: % _ \ are not wildcards), optionally with one
-- status; newest first. lim is clamped to 1..100 (default 20), off to >= 0.
CREATE FUNCTION public.search_trips(q text DEFAULT NULL, status text DEFAULT NULL,
                                    lim integer DEFAULT 20, off integer DEFAULT 0)
RETURNS SETOF public.trips
LANGUAGE plpgsql STABLE SECURITY INVOKER
SET search_path = ''
AS $$
DECLARE
    pattern text;
BEGIN
    IF auth.uid() IS NULL THEN
        RAISE EXCEPTION 'search_trips needs a signed-in user'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF nullif(q, '') IS NOT NULL THEN
        pattern := '%' || pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(
                       q, '\', '\\'), '%', '\%'), '_', '\_') || '%';
    END IF;
    RETURN QUERY
        SELECT t.* FROM public.trips t
        WHERE (pattern IS NULL
               OR t.name ILIKE pattern
               OR t.destination ILIKE pattern
               OR pg_catalog.array_to_string(t.notes, ' ') ILIKE pattern)
          AND (nullif(search_trips.status, '') IS NULL OR t.status = search_trips.status)
        ORDER BY t.created_at DESC, t.id DESC
        LIMIT least(greatest(coalesce(lim, 20), 1), 100)
        OFFSET greatest(coalesce(off, 0), 0);
END
$$;

-- ---------------------------------------------------------------------------------------------
-- Nearest destinations to query_embedding by cosine distance, through the HNSW index:
-- ORDER BY embedding <=> q LIMIT n first, then drop rows under match_threshold (so the
-- threshold never turns the index scan into a full scan). similarity = 1 - cosine distance.
-- match_count is clamped to 1..1000 (default 10); match_threshold defaults to -1 (keep all).
-- hnsw.ef_search is raised (transaction-local) to match_count so a large match_count still
-- returns match_count rows (HNSW returns at most ef_search rows).
-- A vector of the wrong dimension raises 22000 (data_exception) -> HTTP 400.
CREATE FUNCTION public.match_destinations(query_embedding vector(384),
                                          match_count integer DEFAULT 10,
                                          match_threshold double precision DEFAULT -1)
RETURNS TABLE (id bigint, name text, country text, description text, popularity integer,
               similarity double precision)
LANGUAGE plpgsql STABLE SECURITY INVOKER
SET search_path = ''
AS $$
DECLARE
    n integer := least(greatest(coalesce(match_count, 10), 1), 1000);
    q public.vector(384) := query_embedding::public.vector(384);  -- enforces 384 dims
BEGIN
    IF n > 40 THEN
        PERFORM pg_catalog.set_config('hnsw.ef_search', n::text, true);
    END IF;
    RETURN QUERY
        SELECT m.id, m.name, m.country, m.description, m.popularity, m.similarity
        FROM (
            SELECT d.id, d.name, d.country, d.description, d.popularity,
                   1 - (d.embedding OPERATOR(public.<=>) q) AS similarity
            FROM public.destinations d
            ORDER BY d.embedding OPERATOR(public.<=>) q
            LIMIT n
        ) m
        WHERE m.similarity >= coalesce(match_threshold, -1)
        ORDER BY m.similarity DESC, m.id;
END
$$;

GRANT EXECUTE ON FUNCTION
    public.user_stats(),
    public.search_trips(text, text, integer, integer),
    public.match_destinations(vector, integer, double precision)
    TO anon, authenticated, service_role;
