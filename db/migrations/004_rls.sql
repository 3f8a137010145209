-- 004_rls.sql - row-level security: who sees and changes which rows.
--
-- RLS is enabled on every table. Policies are written for `authenticated` (anon has no
-- grants except SELECT on destinations; service_role has BYPASSRLS).
--   users               own row: select/insert/update (no delete). (This migration also let
--                       a caller select the people who share a trip with them; 009 narrows
--                       users to the own row and shows co-travellers' names through the
--                       collaborator_profiles view instead.)
--   trips               owner: select/update/delete; insert only with user_id = caller;
--                       collaborator (any level): select; edit/admin: update.
--                       Ownership itself cannot move (trigger in 003).
--   trip_collaborators  select: rows of every trip the caller can see (owner: all rows of
--                       their trips; collaborator: the rows of trips they are on);
--                       insert/update/delete: the trip's owner only.
--   api_keys, api_key_usage_logs, search_history: strictly the caller's own rows.
--   destinations        select for anon and authenticated; no write policy.
--
-- Recursion: trips' policies need trip_collaborators and trip_collaborators' policies need
-- trips. The trips side asks SECURITY DEFINER helpers in `private` (they read the tables as
-- their owner, without RLS), so evaluating a policy never re-enters another table's policy
-- that leads back. The helpers return only facts about the caller (auth.uid()), so calling
-- them directly reveals nothing the caller could not already see.
--
-- Performance: auth.uid() and the id-set helpers are wrapped in (SELECT ...) / ARRAY(SELECT
-- ...) so they run once per statement (an InitPlan), not once per row; `user_id = $uid OR id =
-- ANY($shared)` lets the planner use trips' user_id and primary-key indexes (BitmapOr).

-- ---------------------------------------------------------------------------------------------
-- Helpers (SECURITY DEFINER, STABLE, empty search_path, fully qualified names).

-- True when the caller owns the trip.
CREATE FUNCTION private.auth_is_trip_owner(p_trip_id bigint) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = ''
AS $$
    SELECT EXISTS (
        SELECT 1 FROM public.trips t
        WHERE t.id = p_trip_id AND t.user_id = auth.uid()
    )
$$;

-- The caller's access to a trip: 'owner', 'admin', 'edit', 'view', or NULL (none).
CREATE FUNCTION private.auth_trip_permission(p_trip_id bigint) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = ''
AS $$
    SELECT coalesce(
        (SELECT 'owner' FROM public.trips t WHERE t.id = p_trip_id AND t.user_id = auth.uid()),
        (SELECT c.permission_level FROM public.trip_collaborators c
          WHERE c.trip_id = p_trip_id AND c.user_id = auth.uid()))
$$;

-- Ids of the trips shared with the caller (any permission level).
CREATE FUNCTION private.auth_shared_trip_ids() RETURNS SETOF bigint
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = ''
AS $$
    SELECT c.trip_id FROM public.trip_collaborators c WHERE c.user_id = auth.uid()
$$;

-- Ids of the trips the caller may change as a collaborator (edit or admin).
CREATE FUNCTION private.auth_editable_trip_ids() RETURNS SETOF bigint
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = ''
AS $$
    SELECT c.trip_id FROM public.trip_collaborators c
    WHERE c.user_id = auth.uid() AND c.permission_level IN ('edit', 'admin')
$$;

-- Ids of the users who share at least one trip with the caller (as owner or collaborator).
CREATE FUNCTION private.auth_co_traveler_ids() RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = ''
AS $$
    WITH my_trips AS (
        SELECT t.id FROM public.trips t WHERE t.user_id = auth.uid()
        UNION
        SELECT c.trip_id FROM public.trip_collaborators c WHERE c.user_id = auth.uid()
    )
    SELECT t.user_id FROM public.trips t JOIN my_trips m ON m.id = t.id
    UNION
    SELECT c.user_id FROM public.trip_collaborators c JOIN my_trips m ON m.id = c.trip_id
$$;

REVOKE ALL ON FUNCTION
    private.auth_is_trip_owner(bigint), private.auth_trip_permission(bigint),
    private.auth_shared_trip_ids(), private.auth_editable_trip_ids(),
    private.auth_co_traveler_ids()
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    private.auth_is_trip_owner(bigint), private.auth_trip_permission(bigint),
    private.auth_shared_trip_ids(), private.auth_editable_trip_ids(),
    private.auth_co_traveler_ids()
    TO authenticated, service_role;

-- ---------------------------------------------------------------------------------------------
ALTER TABLE public.users              ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.trips              ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.trip_collaborators ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.api_keys           ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.api_key_usage_logs ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.search_history     ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.destinations       ENABLE ROW LEVEL SECURITY;

-- ---------------------------------------------------------------------------------------------
-- users
CREATE POLICY users_select ON public.users FOR SELECT TO authenticated
    USING (id = (SELECT auth.uid())
           OR id = ANY (ARRAY(SELECT private.auth_co_traveler_ids())));
CREATE POLICY users_insert ON public.users FOR INSERT TO authenticated
    WITH CHECK (id = (SELECT auth.uid()));
CREATE POLICY users_update ON public.users FOR UPDATE TO authenticated
    USING (id = (SELECT auth.uid()))
    WITH CHECK (id = (SELECT auth.uid()));

-- ---------------------------------------------------------------------------------------------
-- trips
CREATE POLICY trips_select ON public.trips FOR SELECT TO authenticated
    USING (user_id = (SELECT auth.uid())
           OR id = ANY (ARRAY(SELECT private.auth_shared_trip_ids())));
CREATE POLICY trips_insert ON public.trips FOR INSERT TO authenticated
    WITH CHECK (user_id = (SELECT auth.uid()));
CREATE POLICY trips_update_owner ON public.trips FOR UPDATE TO authenticated
    USING (user_id = (SELECT auth.uid()))
    WITH CHECK (user_id = (SELECT auth.uid()));
CREATE POLICY trips_update_collaborator ON public.trips FOR UPDATE TO authenticated
    USING (id = ANY (ARRAY(SELECT private.auth_editable_trip_ids())))
    WITH CHECK (id = ANY (ARRAY(SELECT private.auth_editable_trip_ids())));
CREATE POLICY trips_delete_owner ON public.trips FOR DELETE TO authenticated
    USING (user_id = (SELECT auth.uid()));

-- ---------------------------------------------------------------------------------------------
-- trip_collaborators
-- Visible: the rows of every trip the caller can see (trips' own RLS decides which).
CREATE POLICY trip_collaborators_select ON public.trip_collaborators FOR SELECT TO authenticated
    USING (trip_id IN (SELECT t.id FROM public.trips t));
CREATE POLICY trip_collaborators_insert ON public.trip_collaborators FOR INSERT TO authenticated
    WITH CHECK (private.auth_is_trip_owner(trip_id)
                AND (added_by IS NULL OR added_by = (SELECT auth.uid())));
CREATE POLICY trip_collaborators_update ON public.trip_collaborators FOR UPDATE TO authenticated
    USING (private.auth_is_trip_owner(trip_id))
    WITH CHECK (private.auth_is_trip_owner(trip_id));
CREATE POLICY trip_collaborators_delete ON public.trip_collaborators FOR DELETE TO authenticated
    USING (private.auth_is_trip_owner(trip_id));

-- ---------------------------------------------------------------------------------------------
-- strictly per user
CREATE POLICY api_keys_own ON public.api_keys FOR ALL TO authenticated
    USING (user_id = (SELECT auth.uid()))
    WITH CHECK (user_id = (SELECT auth.uid()));

-- A usage row must also point at one of the caller's own keys (api_keys' RLS filters the
-- subquery to them).
CREATE POLICY api_key_usage_logs_own ON public.api_key_usage_logs FOR ALL TO authenticated
    USING (user_id = (SELECT auth.uid()))
    WITH CHECK (user_id = (SELECT auth.uid())
                AND api_key_id IN (SELECT k.id FROM public.api_keys k));

CREATE POLICY search_history_own ON public.search_history FOR ALL TO authenticated
    USING (user_id = (SELECT auth.uid()))
    WITH CHECK (user_id = (SELECT auth.uid()));

-- ---------------------------------------------------------------------------------------------
-- destinations: a public catalogue; writes only through service_role (BYPASSRLS).
CREATE POLICY destinations_read ON public.destinations FOR SELECT TO anon, authenticated
    USING (true);
