-- 008_rest_rpc_demo.sql - small functions that show what /rest/v1/rpc/:fn does (PostgREST's
-- calling conventions) on the demo schema; spec/integration/rest_rpc_spec.lua calls them.
--
--   trip_budget_total(status)             STABLE scalar: the budgets of the trips the caller
--                                         sees (RLS), optionally of one status (default NULL)
--   trip_summaries(min_travelers)         STABLE set-returning TABLE (...) over trips (RLS),
--                                         min_travelers defaults to 1
--   rename_trip(trip_id, new_name)        VOLATILE, returns the updated trips row (RLS: only
--                                         those who may edit the trip)
--   record_search(search_type, query)     VOLATILE void: adds a search_history row
--   format_budget(amount)                 overloaded pair, told apart by their argument
--   format_budget(amount, currency)       names: "12.50" and "12.50 EUR"
--   label_of(v integer), label_of(v text) overloaded pair with the same argument names: a
--                                         call by name cannot choose (PostgREST's 300)
--   check_budget(amount)                  IMMUTABLE; RAISEs P0001 (negative), PT402 (over a
--                                         million: HTTP 402), or SQLSTATE PGRST with a JSON
--                                         message/detail (exactly 13: HTTP 418 + a header)
--   sum_all(VARIADIC nums integer[])      IMMUTABLE, variadic
--   echo_json(payload jsonb)              IMMUTABLE, one jsonb argument (params=single-object)
--   trips_by_title(q)                     STABLE SETOF trips whose name matches q (ILIKE,
--                                         RLS): the postgrest-js spec's rpc with filters
--   echo_int(n)                           IMMUTABLE scalar: n
-- All are SECURITY INVOKER (they run as the caller: RLS and grants apply) with an empty
-- search_path. EXECUTE is revoked from PUBLIC and granted to authenticated and service_role
-- only, so anon's calls are refused (401).

-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION public.trips_by_title(q text) RETURNS SETOF public.trips
LANGUAGE sql STABLE SECURITY INVOKER
SET search_path = ''
AS $$
    SELECT t.* FROM public.trips t WHERE t.name ILIKE q ORDER BY t.id
$$;

CREATE FUNCTION public.echo_int(n integer) RETURNS integer
LANGUAGE sql IMMUTABLE SECURITY INVOKER
SET search_path = ''
AS $$ SELECT n $$;

CREATE FUNCTION public.trip_budget_total(status text DEFAULT NULL) RETURNS numeric
LANGUAGE sql STABLE SECURITY INVOKER
SET search_path = ''
AS $$
    SELECT coalesce(pg_catalog.sum(t.budget), 0)
    FROM public.trips t
    WHERE trip_budget_total.status IS NULL OR t.status = trip_budget_total.status
$$;

CREATE FUNCTION public.trip_summaries(min_travelers integer DEFAULT 1)
RETURNS TABLE (id bigint, name text, destination text, travelers integer, budget numeric,
               status text)
LANGUAGE sql STABLE SECURITY INVOKER
SET search_path = ''
AS $$
    SELECT t.id, t.name, t.destination, t.travelers, t.budget, t.status
    FROM public.trips t
    WHERE t.travelers >= min_travelers
    ORDER BY t.id
$$;

CREATE FUNCTION public.rename_trip(trip_id bigint, new_name text) RETURNS public.trips
LANGUAGE sql VOLATILE SECURITY INVOKER
SET search_path = ''
AS $$
    UPDATE public.trips t SET name = new_name WHERE t.id = trip_id RETURNING t.*
$$;

CREATE FUNCTION public.record_search(search_type text, query jsonb) RETURNS void
LANGUAGE sql VOLATILE SECURITY INVOKER
SET search_path = ''
AS $$
    INSERT INTO public.search_history (search_type, query) VALUES (search_type, query)
$$;

-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION public.format_budget(amount numeric) RETURNS text
LANGUAGE sql IMMUTABLE SECURITY INVOKER
SET search_path = ''
AS $$ SELECT pg_catalog.to_char(amount, 'FM999999999990.00') $$;

CREATE FUNCTION public.format_budget(amount numeric, currency text) RETURNS text
LANGUAGE sql IMMUTABLE SECURITY INVOKER
SET search_path = ''
AS $$ SELECT pg_catalog.to_char(amount, 'FM999999999990.00') || ' ' || currency $$;

CREATE FUNCTION public.label_of(v integer) RETURNS text
LANGUAGE sql IMMUTABLE SECURITY INVOKER
SET search_path = ''
AS $$ SELECT 'integer ' || v $$;

CREATE FUNCTION public.label_of(v text) RETURNS text
LANGUAGE sql IMMUTABLE SECURITY INVOKER
SET search_path = ''
AS $$ SELECT 'text ' || v $$;

-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION public.check_budget(amount numeric) RETURNS numeric
LANGUAGE plpgsql IMMUTABLE SECURITY INVOKER
SET search_path = ''
AS $$
BEGIN
    IF amount < 0 THEN
        RAISE EXCEPTION 'budget must not be negative'
            USING DETAIL = 'got ' || amount, HINT = 'pass 0 or more';
    ELSIF amount > 1000000 THEN
        RAISE SQLSTATE 'PT402' USING MESSAGE = 'Payment Required',
            DETAIL = 'Quota exceeded', HINT = 'Upgrade your plan';
    ELSIF amount = 13 THEN
        RAISE SQLSTATE 'PGRST' USING
            MESSAGE = '{"code": "TRIP13", "message": "unlucky budget", "hint": "try 12"}',
            DETAIL = '{"status": 418, "headers": {"X-Budget": "13"}}';
    END IF;
    RETURN amount;
END
$$;

CREATE FUNCTION public.sum_all(VARIADIC nums integer[]) RETURNS integer
LANGUAGE sql IMMUTABLE SECURITY INVOKER
SET search_path = ''
AS $$ SELECT coalesce(pg_catalog.sum(n), 0)::integer FROM pg_catalog.unnest(nums) n $$;

CREATE FUNCTION public.echo_json(payload jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE SECURITY INVOKER
SET search_path = ''
AS $$ SELECT payload $$;

-- ---------------------------------------------------------------------------------------------
REVOKE ALL ON FUNCTION
    public.trip_budget_total(text),
    public.trip_summaries(integer),
    public.rename_trip(bigint, text),
    public.record_search(text, jsonb),
    public.format_budget(numeric),
    public.format_budget(numeric, text),
    public.label_of(integer),
    public.label_of(text),
    public.check_budget(numeric),
    public.sum_all(integer[]),
    public.echo_json(jsonb),
    public.trips_by_title(text),
    public.echo_int(integer)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    public.trip_budget_total(text),
    public.trip_summaries(integer),
    public.rename_trip(bigint, text),
    public.record_search(text, jsonb),
    public.format_budget(numeric),
    public.format_budget(numeric, text),
    public.label_of(integer),
    public.label_of(text),
    public.check_budget(numeric),
    public.sum_all(integer[]),
    public.echo_json(jsonb),
    public.trips_by_title(text),
    public.echo_int(integer)
    TO authenticated, service_role;
