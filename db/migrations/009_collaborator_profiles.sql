-- 009_collaborator_profiles.sql - a co-traveller sees a name, not a profile.
--
-- Until now users_select (004) let a user read the whole users row of everyone who shares a
-- trip with them, so GET /rest/v1/users?select=email,preferences listed the owner's and the
-- fellow collaborators' emails and preferences. Column privileges cannot fix that (they hold
-- for every row a role reads, the caller's own included: a user must still read and return
-- their own email), so the two needs are split:
--   public.users                  RLS: the caller's own row only (select, insert, update).
--   public.collaborator_profiles  a view: id and full_name of the caller and of every user
--                                 who shares a trip with them (owner <-> collaborators,
--                                 fellow collaborators), what a trip's member list shows.
--
-- The view reads users as its owner (security_invoker off: the caller's own RLS would hide
-- the co-travellers), so its WHERE clause is the access rule and must stay there; the owner
-- must be able to read public.users (the table's owner, as when migrations run: RLS does not
-- apply to it). security_barrier makes Postgres apply that WHERE before any condition a client
-- adds, so a cheap function in a filter never sees the rows the view drops. Only SELECT is
-- granted, to authenticated and service_role (service_role with a sub sees that user's
-- co-travellers, without one nobody): the view is simple enough to be auto-updatable, and a
-- write through it would run as its owner, past users' RLS. anon gets nothing (42501).
--
-- /rest/v1 serves the view like a table (filters, order, ranges); it cannot be embedded
-- (relationships of views are not inferred: tide/rest/embed.lua), so a client that lists
-- a trip's collaborators asks for their names with collaborator_profiles?id=in.(...).
-- policies/cache.lua tags reads of it with the tables that decide its rows.

DROP POLICY users_select ON public.users;
CREATE POLICY users_select ON public.users FOR SELECT TO authenticated
    USING (id = (SELECT auth.uid()));

CREATE VIEW public.collaborator_profiles
    WITH (security_barrier = true, security_invoker = false)
AS
    SELECT u.id, u.full_name
    FROM public.users u
    WHERE u.id = (SELECT auth.uid())
       OR u.id = ANY (ARRAY(SELECT private.auth_co_traveler_ids()));

COMMENT ON VIEW public.collaborator_profiles IS
    'id and full_name of the caller and of the users who share a trip with them (read-only; '
    'the whole row, email and preferences included, is public.users, the caller''s own only)';

-- Explicitly from every API role too: a database with default privileges on public (Supabase
-- grants ALL on new relations to anon, authenticated and service_role) would otherwise let
-- them write through the view.
REVOKE ALL ON public.collaborator_profiles FROM PUBLIC, anon, authenticated, service_role;
GRANT SELECT ON public.collaborator_profiles TO authenticated, service_role;
