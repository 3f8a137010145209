-- db/test/profiles_check.sql - what one user learns about another through the demo schema
-- (migration 009): public.users answers only the caller's own row, so a co-traveller's email
-- and preferences never show; public.collaborator_profiles shows the id and full_name of the
-- people who share a trip with the caller (and the caller's own), nothing else, to nobody
-- else, and cannot be written through. Run like rls_check.sql (same helpers, same way of
-- becoming a request); everything is created in one transaction and ROLLed BACK:
--     psql "$TIDE_DSN_ADMIN" -X -q -v ON_ERROR_STOP=1 -f db/test/profiles_check.sql

\set ON_ERROR_STOP on
BEGIN;

-- Become a request: claims + role, transaction-local, exactly as tide does.
CREATE FUNCTION pg_temp.act_as(p_role text, p_sub text DEFAULT NULL) RETURNS void
LANGUAGE sql AS $$
    SELECT set_config('request.jwt.claims',
                      CASE WHEN p_sub IS NULL THEN json_build_object('role', p_role)
                           ELSE json_build_object('sub', p_sub, 'role', p_role) END::text,
                      true),
           set_config('role', p_role, true);
$$;

-- Fails the run unless cond is true (NULL counts as false).
CREATE FUNCTION pg_temp.ok(cond boolean, what text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF cond IS NOT TRUE THEN
        RAISE EXCEPTION 'profiles_check FAILED: % (as role %, claims %)', what, current_user,
            current_setting('request.jwt.claims', true);
    END IF;
END
$$;

-- Runs sql; returns the SQLSTATE it failed with, or NULL when it succeeded.
CREATE FUNCTION pg_temp.sqlstate_of(sql text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    RETURN NULL;
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END
$$;

-- The ids of a query's rows (its first column, uuid), sorted.
CREATE FUNCTION pg_temp.ids(sql text) RETURNS uuid[]
LANGUAGE plpgsql AS $$
DECLARE
    out uuid[];
BEGIN
    EXECUTE format('SELECT coalesce(array_agg(q.id ORDER BY q.id), ''{}'') FROM (%s) q', sql)
        INTO out;
    RETURN out;
END
$$;

-- A filter a client could write: it records every full_name it is shown, in a setting. It is
-- as cheap as can be, so the planner would run it before the view's own filter if it were
-- allowed to (it is not: the view is a security barrier).
CREATE FUNCTION pg_temp.peek(v text) RETURNS boolean
LANGUAGE sql COST 0.0000001 AS $$
    SELECT set_config('profiles.seen',
                      coalesce(current_setting('profiles.seen', true), '') || '|' || coalesce(v, ''),
                      true) IS NOT NULL
$$;

-- alice owns a trip shared with bob (view) and carol (edit); dave shares nothing; erin shares
-- another of alice's trips, so she is alice's co-traveller but not bob's.
DO $$
DECLARE
    alice uuid := 'a11ce000-0000-4000-8000-0000000000a1';
    bob   uuid := 'b0b00000-0000-4000-8000-0000000000b2';
    carol uuid := 'ca201000-0000-4000-8000-0000000000c3';
    dave  uuid := 'da7e0000-0000-4000-8000-0000000000d4';
    erin  uuid := 'e1e10000-0000-4000-8000-0000000000e5';
    t1 bigint;
    t2 bigint;
BEGIN
    PERFORM set_config('profiles.alice', alice::text, true),
            set_config('profiles.bob', bob::text, true),
            set_config('profiles.carol', carol::text, true),
            set_config('profiles.dave', dave::text, true),
            set_config('profiles.erin', erin::text, true);
    PERFORM pg_temp.act_as('service_role');
    INSERT INTO public.users (id, email, full_name, preferences) VALUES
        (alice, 'profiles-alice@check.invalid', 'Alice P', '{"diet":"vegan"}'),
        (bob,   'profiles-bob@check.invalid',   'Bob P',   '{"seat":"aisle"}'),
        (carol, 'profiles-carol@check.invalid', 'Carol P', '{}'),
        (dave,  'profiles-dave@check.invalid',  'Dave P',  '{}'),
        (erin,  'profiles-erin@check.invalid',  'Erin P',  '{}');
    INSERT INTO public.trips (user_id, name, destination) VALUES (alice, 'profiles t1', 'Oslo')
        RETURNING id INTO t1;
    INSERT INTO public.trips (user_id, name, destination) VALUES (alice, 'profiles t2', 'Bergen')
        RETURNING id INTO t2;
    INSERT INTO public.trip_collaborators (trip_id, user_id, permission_level, added_by) VALUES
        (t1, bob, 'view', alice), (t1, carol, 'edit', alice), (t2, erin, 'view', alice);
    PERFORM set_config('profiles.t1', t1::text, true);
END
$$;

-- ---------------------------------------------------------------------------------------------
-- 1. public.users: the caller's own row only, whoever shares a trip with them.
DO $$
DECLARE
    alice uuid := current_setting('profiles.alice');
    bob   uuid := current_setting('profiles.bob');
    carol uuid := current_setting('profiles.carol');
    dave  uuid := current_setting('profiles.dave');
BEGIN
    PERFORM pg_temp.act_as('authenticated', bob::text);
    PERFORM pg_temp.ok(pg_temp.ids('SELECT id FROM public.users') = ARRAY[bob],
                       'bob (a collaborator) reads only his own users row');
    PERFORM pg_temp.ok((SELECT count(*) FROM public.users WHERE email LIKE 'profiles-%') = 1,
                       'bob sees no co-traveller''s email');
    PERFORM pg_temp.ok((SELECT preferences FROM public.users WHERE id = alice) IS NULL,
                       'bob cannot read the trip owner''s preferences');
    PERFORM pg_temp.ok((SELECT u.email FROM public.trips t JOIN public.users u ON u.id = t.user_id
                        WHERE t.id = current_setting('profiles.t1')::bigint) IS NULL,
                       'bob cannot reach the owner''s email through the trip he shares');

    PERFORM pg_temp.act_as('authenticated', alice::text);
    PERFORM pg_temp.ok(pg_temp.ids('SELECT id FROM public.users') = ARRAY[alice],
                       'alice (an owner) reads only her own users row');
    PERFORM pg_temp.ok((SELECT email = 'profiles-alice@check.invalid'
                               AND preferences = '{"diet":"vegan"}'
                        FROM public.users WHERE id = alice),
                       'alice reads her whole own row');

    PERFORM pg_temp.act_as('authenticated', carol::text);
    PERFORM pg_temp.ok(pg_temp.ids('SELECT id FROM public.users') = ARRAY[carol],
                       'carol (edit) reads only her own users row');
    PERFORM pg_temp.act_as('authenticated', dave::text);
    PERFORM pg_temp.ok(pg_temp.ids('SELECT id FROM public.users') = ARRAY[dave],
                       'dave reads only his own users row');
END
$$;

-- ---------------------------------------------------------------------------------------------
-- 2. public.collaborator_profiles: id and full_name of the caller and their co-travellers.
DO $$
DECLARE
    alice uuid := current_setting('profiles.alice');
    bob   uuid := current_setting('profiles.bob');
    carol uuid := current_setting('profiles.carol');
    dave  uuid := current_setting('profiles.dave');
    erin  uuid := current_setting('profiles.erin');
    everyone uuid[] := ARRAY[alice, bob, carol, dave, erin];
BEGIN
    PERFORM pg_temp.ok((SELECT array_agg(attname::text ORDER BY attnum) FROM pg_attribute
                        WHERE attrelid = 'public.collaborator_profiles'::regclass
                          AND attnum > 0 AND NOT attisdropped) = ARRAY['id', 'full_name'],
                       'collaborator_profiles has exactly id and full_name');

    PERFORM pg_temp.act_as('authenticated', bob::text);
    PERFORM pg_temp.ok(pg_temp.ids(format(
        'SELECT id FROM public.collaborator_profiles WHERE id = ANY (%L)', everyone))
        = (SELECT array_agg(u ORDER BY u) FROM unnest(ARRAY[alice, bob, carol]) u),
        'bob sees the owner, the fellow collaborator and himself, not dave nor erin');
    PERFORM pg_temp.ok((SELECT full_name FROM public.collaborator_profiles WHERE id = alice)
                       = 'Alice P', 'bob reads the owner''s name');
    PERFORM pg_temp.ok(pg_temp.sqlstate_of(
        'SELECT email FROM public.collaborator_profiles') = '42703',
        'collaborator_profiles has no email column');

    PERFORM pg_temp.act_as('authenticated', alice::text);
    PERFORM pg_temp.ok(pg_temp.ids(format(
        'SELECT id FROM public.collaborator_profiles WHERE id = ANY (%L)', everyone))
        = (SELECT array_agg(u ORDER BY u) FROM unnest(ARRAY[alice, bob, carol, erin]) u),
        'alice sees the collaborators of both her trips');

    PERFORM pg_temp.act_as('authenticated', dave::text);
    PERFORM pg_temp.ok(pg_temp.ids('SELECT id FROM public.collaborator_profiles') = ARRAY[dave],
                       'dave (no share) sees only himself');

    -- a client's own filter runs after the view's (security barrier): it is never shown
    -- the names of people the caller does not share a trip with
    PERFORM set_config('profiles.seen', '', true);
    PERFORM count(*) FROM public.collaborator_profiles WHERE pg_temp.peek(full_name);
    PERFORM pg_temp.ok(current_setting('profiles.seen') = '|Dave P',
                       'a cheap client filter saw only dave''s own name, not: '
                       || current_setting('profiles.seen'));

    PERFORM pg_temp.act_as('authenticated', NULL);   -- a token without sub
    PERFORM pg_temp.ok((SELECT count(*) FROM public.collaborator_profiles) = 0,
                       'no sub: no profiles');
    PERFORM pg_temp.act_as('anon');
    PERFORM pg_temp.ok(pg_temp.sqlstate_of('SELECT 1 FROM public.collaborator_profiles') = '42501',
                       'anon cannot read collaborator_profiles');
END
$$;

-- ---------------------------------------------------------------------------------------------
-- 3. The view cannot be written through (it reads users as its owner: a write would not be
--    checked by users' RLS), and it follows the shares as they change.
DO $$
DECLARE
    alice uuid := current_setting('profiles.alice');
    bob   uuid := current_setting('profiles.bob');
    t1 bigint := current_setting('profiles.t1');
BEGIN
    PERFORM pg_temp.act_as('authenticated', bob::text);
    PERFORM pg_temp.ok(pg_temp.sqlstate_of(format(
        'UPDATE public.collaborator_profiles SET full_name = %L WHERE id = %L', 'hacked', alice))
        = '42501', 'bob cannot rename alice through the view');
    PERFORM pg_temp.ok(pg_temp.sqlstate_of(format(
        'UPDATE public.collaborator_profiles SET full_name = %L WHERE id = %L', 'Bob', bob))
        = '42501', 'the view is read-only even for one''s own row');
    PERFORM pg_temp.ok(pg_temp.sqlstate_of(format(
        'DELETE FROM public.collaborator_profiles WHERE id = %L', alice)) = '42501',
        'bob cannot delete through the view');
    PERFORM pg_temp.ok(pg_temp.sqlstate_of(format(
        'INSERT INTO public.collaborator_profiles (id, full_name) VALUES (%L, %L)',
        gen_random_uuid(), 'forged')) = '42501', 'nobody inserts through the view');

    -- alice removes bob: he no longer sees her name
    PERFORM pg_temp.act_as('authenticated', alice::text);
    DELETE FROM public.trip_collaborators WHERE trip_id = t1 AND user_id = bob;
    PERFORM pg_temp.act_as('authenticated', bob::text);
    PERFORM pg_temp.ok(pg_temp.ids('SELECT id FROM public.collaborator_profiles') = ARRAY[bob],
                       'bob, removed from the trip, sees only himself');

    PERFORM pg_temp.act_as('service_role');
    PERFORM pg_temp.ok((SELECT full_name FROM public.users WHERE id = alice) = 'Alice P',
                       'alice''s name is unchanged');
END
$$;

ROLLBACK;
\echo profiles_check: all checks passed
