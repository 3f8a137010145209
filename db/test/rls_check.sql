-- db/test/rls_check.sql - checks the grants, RLS policies and RPC functions the way tide uses
-- them: per statement, set_config('request.jwt.claims', ..., true) + set_config('role', ...,
-- true) inside one transaction. Any failed expectation RAISEs, so with ON_ERROR_STOP psql
-- exits non-zero (CI):
--     psql "$TIDE_DSN_DIRECT" -X -q -v ON_ERROR_STOP=1 -f db/test/rls_check.sql
-- Run it as authenticator (what tide logs in as) or as the superuser; it needs only
-- membership in anon/authenticated/service_role. It creates its own users, trips, keys and
-- destinations inside one transaction and ROLLs it BACK: nothing is left behind, and it does
-- not depend on the demo seed (the seed's rows are merely present or not).

\set ON_ERROR_STOP on
BEGIN;

-- ---------------------------------------------------------------------------------------------
-- Helpers (temporary: gone with the session).

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
        RAISE EXCEPTION 'rls_check FAILED: % (as role %, claims %)', what, current_user,
            current_setting('request.jwt.claims', true);
    END IF;
END
$$;

-- Runs sql; returns the SQLSTATE it failed with, or NULL when it succeeded. The statement's
-- effects are undone either way when it fails (subtransaction).
CREATE FUNCTION pg_temp.sqlstate_of(sql text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    RETURN NULL;
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END
$$;

-- Runs sql (UPDATE/DELETE/INSERT) and returns the number of rows it touched.
CREATE FUNCTION pg_temp.affected(sql text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    EXECUTE sql;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- Fixture identities (not the demo seed's, so both can coexist).
DO $$
BEGIN
    PERFORM set_config('rls.alice', 'a11ce000-0000-4000-8000-000000000001', true),
            set_config('rls.bob',   'b0b00000-0000-4000-8000-000000000002', true),
            set_config('rls.carol', 'ca201000-0000-4000-8000-000000000003', true),
            set_config('rls.dave',  'da7e0000-0000-4000-8000-000000000004', true);
END
$$;

-- ---------------------------------------------------------------------------------------------
-- 0. The login role itself has no table rights (NOINHERIT); auth.* never errors.
DO $$
BEGIN
    IF session_user = 'authenticator' THEN
        PERFORM pg_temp.ok(pg_temp.sqlstate_of('SELECT 1 FROM public.trips') = '42501',
                           'authenticator without a role switch must not read trips');
    END IF;

    PERFORM set_config('role', 'anon', true);
    PERFORM set_config('request.jwt.claims', '', true);
    PERFORM pg_temp.ok(auth.uid() IS NULL AND auth.role() IS NULL AND auth.jwt() IS NULL,
                       'auth.* are NULL for empty claims');
    PERFORM set_config('request.jwt.claims', '{"role":"anon"}', true);
    PERFORM pg_temp.ok(auth.uid() IS NULL AND auth.role() = 'anon', 'claims without sub');
    PERFORM set_config('request.jwt.claims', '{"sub":"not-a-uuid","role":"authenticated"}', true);
    PERFORM pg_temp.ok(auth.uid() IS NULL, 'a non-uuid sub gives a NULL auth.uid()');
    PERFORM set_config('request.jwt.claims',
                       '{"sub":"A11CE000-0000-4000-8000-000000000001","role":"authenticated","x":1}', true);
    PERFORM pg_temp.ok(auth.uid() = current_setting('rls.alice')::uuid
                       AND (auth.jwt() ->> 'x') = '1', 'auth.uid() / auth.jwt() read the claims');
END
$$;

-- ---------------------------------------------------------------------------------------------
-- 1. Fixture, created through RLS by each user (so the insert policies are exercised too).
DO $$
DECLARE
    alice uuid := current_setting('rls.alice');
    bob   uuid := current_setting('rls.bob');
    carol uuid := current_setting('rls.carol');
    dave  uuid := current_setting('rls.dave');
    id1 bigint;
    id2 bigint;
    idb bigint;
BEGIN
    PERFORM pg_temp.act_as('authenticated', alice::text);
    INSERT INTO public.users (id, email, full_name) VALUES (alice, 'rls-alice@check.invalid', 'Alice RLS');
    PERFORM pg_temp.act_as('authenticated', bob::text);
    INSERT INTO public.users (id, email, full_name) VALUES (bob, 'rls-bob@check.invalid', 'Bob RLS');
    PERFORM pg_temp.act_as('authenticated', carol::text);
    INSERT INTO public.users (email, full_name) VALUES ('rls-carol@check.invalid', 'Carol RLS'); -- id defaults to auth.uid()
    PERFORM pg_temp.act_as('authenticated', dave::text);
    INSERT INTO public.users (id, email) VALUES (dave, 'rls-dave@check.invalid');

    PERFORM pg_temp.act_as('authenticated', alice::text);
    INSERT INTO public.trips (user_id, name, destination, start_date, end_date, notes)
        VALUES (alice, 'rlscheck shared trip', 'Kyoto', CURRENT_DATE + 10, CURRENT_DATE + 12,
                '{"zzrlsnote"}')
        RETURNING id INTO id1;
    INSERT INTO public.trips (name, destination, start_date, end_date)   -- user_id defaults
        VALUES ('rlscheck private trip', 'Lisbon', CURRENT_DATE + 20, CURRENT_DATE + 22)
        RETURNING id INTO id2;
    INSERT INTO public.trip_collaborators (trip_id, user_id, permission_level)
        VALUES (id1, bob, 'view'), (id1, carol, 'edit');

    PERFORM pg_temp.act_as('authenticated', bob::text);
    INSERT INTO public.trips (user_id, name, destination)
        VALUES (bob, 'rlscheck bob trip', 'Chania') RETURNING id INTO idb;

    PERFORM set_config('rls.a1', id1::text, true);
    PERFORM set_config('rls.a2', id2::text, true);
    PERFORM set_config('rls.b1', idb::text, true);

    PERFORM pg_temp.act_as('authenticated', alice::text);
    PERFORM pg_temp.ok((SELECT user_id FROM public.trips WHERE id = id2) = alice,
                       'trips.user_id defaults to auth.uid()');
    PERFORM pg_temp.ok((SELECT added_by FROM public.trip_collaborators
                        WHERE trip_id = id1 AND user_id = bob) = alice,
                       'trip_collaborators.added_by defaults to auth.uid()');
END
$$;

-- ---------------------------------------------------------------------------------------------
-- 2. trips: who sees what.
DO $$
DECLARE
    a1 bigint := current_setting('rls.a1');
    a2 bigint := current_setting('rls.a2');
    b1 bigint := current_setting('rls.b1');
    mine bigint[] ;
BEGIN
    mine := ARRAY[a1, a2, b1];

    PERFORM pg_temp.act_as('authenticated', current_setting('rls.alice'));
    PERFORM pg_temp.ok((SELECT array_agg(id ORDER BY id) FROM public.trips WHERE id = ANY (mine))
                       = ARRAY[a1, a2], 'alice sees her two trips, not bob''s');
    PERFORM pg_temp.ok((SELECT count(*) FROM public.trips) = 2, 'alice sees exactly 2 trips overall');

    PERFORM pg_temp.act_as('authenticated', current_setting('rls.bob'));
    PERFORM pg_temp.ok((SELECT array_agg(id ORDER BY id) FROM public.trips WHERE id = ANY (mine))
                       = ARRAY[a1, b1], 'bob sees his trip and the one shared with him (view)');
    PERFORM pg_temp.ok((SELECT count(*) FROM public.trips) = 2, 'bob sees exactly 2 trips overall');

    PERFORM pg_temp.act_as('authenticated', current_setting('rls.carol'));
    PERFORM pg_temp.ok((SELECT array_agg(id ORDER BY id) FROM public.trips) = ARRAY[a1],
                       'carol sees only the trip shared with her (edit)');

    PERFORM pg_temp.act_as('authenticated', current_setting('rls.dave'));
    PERFORM pg_temp.ok((SELECT count(*) FROM public.trips) = 0, 'dave (no share) sees no trip');
    PERFORM pg_temp.ok((SELECT count(*) FROM public.trip_collaborators) = 0,
                       'dave sees no collaborator row');

    PERFORM pg_temp.act_as('authenticated', NULL);   -- a token without sub
    PERFORM pg_temp.ok((SELECT count(*) FROM public.trips) = 0, 'no sub: no trips');

    PERFORM pg_temp.act_as('service_role');
    PERFORM pg_temp.ok((SELECT count(*) FROM public.trips WHERE id = ANY (mine)) = 3,
                       'service_role bypasses RLS');
END
$$;

-- ---------------------------------------------------------------------------------------------
-- 3. trips: who changes what.
DO $$
DECLARE
    a1 bigint := current_setting('rls.a1');
    a2 bigint := current_setting('rls.a2');
    b1 bigint := current_setting('rls.b1');
    alice text := current_setting('rls.alice');
    bob text := current_setting('rls.bob');
    carol text := current_setting('rls.carol');
BEGIN
    -- view collaborator: no update, no delete (silently 0 rows, as RLS does)
    PERFORM pg_temp.act_as('authenticated', bob);
    PERFORM pg_temp.ok(pg_temp.affected(format(
        'UPDATE public.trips SET name = %L WHERE id = %s', 'bob was here', a1)) = 0,
        'bob (view) cannot update the shared trip');
    PERFORM pg_temp.ok(pg_temp.affected(format('DELETE FROM public.trips WHERE id = %s', a1)) = 0,
        'bob (view) cannot delete the shared trip');

    -- edit collaborator: update yes, delete no, take ownership no
    PERFORM pg_temp.act_as('authenticated', carol);
    PERFORM pg_temp.ok(pg_temp.affected(format(
        'UPDATE public.trips SET name = %L, budget = 100, updated_at = %L WHERE id = %s',
        'rlscheck carol edited', '2000-01-01', a1)) = 1,
        'carol (edit) can update the shared trip');
    PERFORM pg_temp.ok(pg_temp.affected(format('DELETE FROM public.trips WHERE id = %s', a1)) = 0,
        'carol (edit) cannot delete the shared trip');
    PERFORM pg_temp.ok(pg_temp.sqlstate_of(format(
        'UPDATE public.trips SET user_id = %L WHERE id = %s', carol, a1)) = '42501',
        'carol (edit) cannot make herself the owner');
    PERFORM pg_temp.ok(pg_temp.affected(format(
        'UPDATE public.trips SET name = %L WHERE id = %s', 'x', a2)) = 0,
        'carol cannot update alice''s unshared trip');

    -- check the edit landed and bob's did not
    PERFORM pg_temp.act_as('authenticated', alice);
    PERFORM pg_temp.ok((SELECT name = 'rlscheck carol edited' AND budget = 100
                        FROM public.trips WHERE id = a1), 'carol''s edit is visible to alice');
    PERFORM pg_temp.ok((SELECT updated_at = now() FROM public.trips WHERE id = a1),
                       'updated_at is set by the trigger, whatever the client sent');
    PERFORM pg_temp.ok(pg_temp.sqlstate_of(format(
        'UPDATE public.trips SET user_id = %L WHERE id = %s', bob, a2)) = '42501',
        'even the owner cannot hand a trip to someone else');

    -- inserting for someone else
    PERFORM pg_temp.act_as('authenticated', bob);
    PERFORM pg_temp.ok(pg_temp.sqlstate_of(format(
        'INSERT INTO public.trips (user_id, name, destination) VALUES (%L, %L, %L)',
        alice, 'forged', 'Nowhere')) = '42501', 'bob cannot create a trip for alice');
    PERFORM pg_temp.ok(pg_temp.affected(format('DELETE FROM public.trips WHERE id = %s', a2)) = 0,
        'bob cannot delete alice''s unshared trip');

    -- constraints answer before RLS hides anything
    PERFORM pg_temp.ok(pg_temp.sqlstate_of(format(
        'UPDATE public.trips SET status = %L WHERE id = %s', 'lost', b1)) = '23514',
        'status CHECK');
    PERFORM pg_temp.ok(pg_temp.sqlstate_of(format(
        'UPDATE public.trips SET start_date = DATE %L, end_date = DATE %L WHERE id = %s',
        '2030-01-10', '2030-01-01', b1)) = '23514', 'end_date >= start_date CHECK');
END
$$;

-- ---------------------------------------------------------------------------------------------
-- 4. trip_collaborators: visibility and management.
DO $$
DECLARE
    a1 bigint := current_setting('rls.a1');
    b1 bigint := current_setting('rls.b1');
    alice text := current_setting('rls.alice');
    bob text := current_setting('rls.bob');
    carol text := current_setting('rls.carol');
    dave text := current_setting('rls.dave');
BEGIN
    PERFORM pg_temp.act_as('authenticated', alice);
    PERFORM pg_temp.ok((SELECT count(*) FROM public.trip_collaborators WHERE trip_id = a1) = 2,
                       'the owner sees all collaborator rows of her trip');
    PERFORM pg_temp.act_as('authenticated', bob);
    PERFORM pg_temp.ok((SELECT count(*) FROM public.trip_collaborators WHERE trip_id = a1) = 2,
                       'a view collaborator sees the collaborator rows of the trip');

    -- only the owner manages
    PERFORM pg_temp.ok(pg_temp.sqlstate_of(format(
        'INSERT INTO public.trip_collaborators (trip_id, user_id, permission_level) VALUES (%s, %L, %L)',
        a1, dave, 'view')) = '42501', 'bob (view) cannot add a collaborator');
    PERFORM pg_temp.act_as('authenticated', carol);
    PERFORM pg_temp.ok(pg_temp.sqlstate_of(format(
        'INSERT INTO public.trip_collaborators (trip_id, user_id, permission_level) VALUES (%s, %L, %L)',
        a1, dave, 'admin')) = '42501', 'carol (edit) cannot add a collaborator');
    PERFORM pg_temp.ok(pg_temp.affected(format(
        'UPDATE public.trip_collaborators SET permission_level = %L WHERE trip_id = %s', 'admin', a1)) = 0,
        'carol (edit) cannot change permissions');
    PERFORM pg_temp.ok(pg_temp.affected(format(
        'DELETE FROM public.trip_collaborators WHERE trip_id = %s', a1)) = 0,
        'carol (edit) cannot remove collaborators');
    PERFORM pg_temp.ok(pg_temp.sqlstate_of(format(
        'INSERT INTO public.trip_collaborators (trip_id, user_id, permission_level) VALUES (%s, %L, %L)',
        b1, carol, 'admin')) = '42501', 'carol cannot add herself to bob''s trip');

    -- an owner cannot forge who added a collaborator
    PERFORM pg_temp.act_as('authenticated', bob);
    PERFORM pg_temp.ok(pg_temp.sqlstate_of(format(
        'INSERT INTO public.trip_collaborators (trip_id, user_id, added_by) VALUES (%s, %L, %L)',
        b1, dave, alice)) = '42501', 'added_by must be the caller');

    -- the owner does manage
    PERFORM pg_temp.act_as('authenticated', alice);
    PERFORM pg_temp.ok(pg_temp.affected(format(
        'UPDATE public.trip_collaborators SET permission_level = %L WHERE trip_id = %s AND user_id = %L',
        'edit', a1, bob)) = 1, 'alice can change bob''s permission');
    PERFORM pg_temp.ok(pg_temp.sqlstate_of(format(
        'INSERT INTO public.trip_collaborators (trip_id, user_id) VALUES (%s, %L)', a1, bob)) = '23505',
        'a user is on a trip at most once');
    PERFORM pg_temp.act_as('authenticated', bob);
    PERFORM pg_temp.ok(pg_temp.affected(format(
        'UPDATE public.trips SET notes = notes || %L::text WHERE id = %s', 'bob now edits', a1)) = 1,
        'bob, promoted to edit, can update the trip');

    PERFORM pg_temp.act_as('authenticated', alice);
    PERFORM pg_temp.ok(pg_temp.affected(format(
        'DELETE FROM public.trip_collaborators WHERE trip_id = %s AND user_id = %L', a1, carol)) = 1,
        'alice can remove carol');
    PERFORM pg_temp.act_as('authenticated', carol);
    PERFORM pg_temp.ok((SELECT count(*) FROM public.trips WHERE id = a1) = 0,
                       'carol, removed, no longer sees the trip');
    PERFORM pg_temp.ok((SELECT count(*) FROM public.trip_collaborators WHERE trip_id = a1) = 0,
                       'carol, removed, no longer sees its collaborators');
    PERFORM pg_temp.ok(pg_temp.affected(format(
        'UPDATE public.trips SET name = %L WHERE id = %s', 'carol again', a1)) = 0,
        'carol, removed, can no longer update the trip');

    -- put carol back (edit) for the sections below
    PERFORM pg_temp.act_as('authenticated', alice);
    INSERT INTO public.trip_collaborators (trip_id, user_id, permission_level) VALUES (a1, carol::uuid, 'edit');
END
$$;

-- ---------------------------------------------------------------------------------------------
-- 5. users: the caller's own row only (co-travellers' names: collaborator_profiles, checked
--    in profiles_check.sql).
DO $$
DECLARE
    alice uuid := current_setting('rls.alice');
    bob uuid := current_setting('rls.bob');
    carol uuid := current_setting('rls.carol');
    dave uuid := current_setting('rls.dave');
BEGIN
    PERFORM pg_temp.act_as('authenticated', bob::text);
    PERFORM pg_temp.ok((SELECT array_agg(id) FROM public.users) = ARRAY[bob],
                       'bob sees only himself, not the owner nor the fellow collaborator');
    PERFORM pg_temp.ok((SELECT array_agg(id ORDER BY id) FROM public.collaborator_profiles)
                       = (SELECT array_agg(u ORDER BY u) FROM unnest(ARRAY[alice, bob, carol]) u),
                       'bob sees the names of himself, the owner and the fellow collaborator');
    PERFORM pg_temp.act_as('authenticated', dave::text);
    PERFORM pg_temp.ok((SELECT array_agg(id) FROM public.users) = ARRAY[dave],
                       'dave sees only himself');
    PERFORM pg_temp.ok(pg_temp.affected(format(
        'UPDATE public.users SET full_name = %L WHERE id = %L', 'hacked', alice)) = 0,
        'dave cannot update alice''s profile');
    PERFORM pg_temp.ok(pg_temp.affected(format(
        'UPDATE public.users SET full_name = %L WHERE id = %L', 'Dave RLS', dave)) = 1,
        'dave can update his own profile');
    PERFORM pg_temp.ok(pg_temp.sqlstate_of(format(
        'UPDATE public.users SET id = %L WHERE id = %L', gen_random_uuid(), dave)) = '42501',
        'dave cannot change his id to another one');
    PERFORM pg_temp.ok(pg_temp.sqlstate_of(format(
        'INSERT INTO public.users (id, email) VALUES (%L, %L)', gen_random_uuid(), 'x@check.invalid')) = '42501',
        'dave cannot create a profile for another id');
    PERFORM pg_temp.ok(pg_temp.affected(format('DELETE FROM public.users WHERE id = %L', dave)) = 0,
        'profiles are not deleted through RLS');
    PERFORM pg_temp.act_as('authenticated', bob::text);
    PERFORM pg_temp.ok(pg_temp.affected(format(
        'UPDATE public.users SET full_name = %L WHERE id = %L', 'hacked', alice)) = 0,
        'bob sees alice''s profile but cannot update it');
END
$$;

-- ---------------------------------------------------------------------------------------------
-- 6. api_keys, api_key_usage_logs, search_history: strictly per user.
DO $$
DECLARE
    alice uuid := current_setting('rls.alice');
    bob uuid := current_setting('rls.bob');
    k uuid;
BEGIN
    PERFORM pg_temp.act_as('authenticated', alice::text);
    INSERT INTO public.api_keys (service_name, key_name, encrypted_key, key_hash)
        VALUES ('maps', 'default', 'ciphertext', 'hash') RETURNING id INTO k;
    INSERT INTO public.api_key_usage_logs (api_key_id, details) VALUES (k, '{"n":1}');
    INSERT INTO public.search_history (search_type, query)
        VALUES ('destination', '{"q":"kyoto"}'), ('flight', '{"to":"KIX"}');
    PERFORM pg_temp.ok(pg_temp.sqlstate_of(format(
        'INSERT INTO public.api_keys (service_name, key_name, encrypted_key, key_hash) VALUES (%L, %L, %L, %L)',
        'maps', 'default', 'c2', 'h2')) = '23505', 'one key per (user, service, name)');

    PERFORM pg_temp.act_as('authenticated', bob::text);
    PERFORM pg_temp.ok((SELECT count(*) FROM public.api_keys) = 0, 'bob sees no api_keys of alice');
    PERFORM pg_temp.ok((SELECT count(*) FROM public.api_key_usage_logs) = 0, 'bob sees no usage logs of alice');
    PERFORM pg_temp.ok((SELECT count(*) FROM public.search_history) = 0, 'bob sees no search_history of alice');
    PERFORM pg_temp.ok(pg_temp.affected(format(
        'UPDATE public.api_keys SET is_active = false WHERE id = %L', k)) = 0, 'bob cannot update alice''s key');
    PERFORM pg_temp.ok(pg_temp.affected(format(
        'DELETE FROM public.api_keys WHERE id = %L', k)) = 0, 'bob cannot delete alice''s key');
    PERFORM pg_temp.ok(pg_temp.affected('DELETE FROM public.search_history') = 0,
        'bob''s "delete all my history" leaves alice''s alone');
    PERFORM pg_temp.ok(pg_temp.sqlstate_of(format(
        'INSERT INTO public.api_keys (user_id, service_name, key_name, encrypted_key, key_hash) VALUES (%L, %L, %L, %L, %L)',
        alice, 'maps', 'evil', 'c', 'h')) = '42501', 'bob cannot store a key for alice');
    PERFORM pg_temp.ok(pg_temp.sqlstate_of(format(
        'INSERT INTO public.search_history (user_id, search_type, query) VALUES (%L, %L, %L)',
        alice, 'x', '{}')) = '42501', 'bob cannot write alice''s search history');
    PERFORM pg_temp.ok(pg_temp.sqlstate_of(format(
        'INSERT INTO public.api_key_usage_logs (api_key_id) VALUES (%L)', k)) = '42501',
        'bob cannot log usage of alice''s key under his own name');

    PERFORM pg_temp.act_as('authenticated', alice::text);
    PERFORM pg_temp.ok((SELECT count(*) FROM public.api_keys) = 1
                       AND (SELECT count(*) FROM public.api_key_usage_logs) = 1
                       AND (SELECT count(*) FROM public.search_history) = 2,
                       'alice still has her key, usage log and history');
    PERFORM pg_temp.ok(pg_temp.affected(format(
        'UPDATE public.api_keys SET last_used_at = now() WHERE id = %L', k)) = 1,
        'alice can update her key');
END
$$;

-- ---------------------------------------------------------------------------------------------
-- 7. anon and destinations.
DO $$
DECLARE
    d1 bigint;
BEGIN
    -- a few known destinations, written the only way writes are allowed (service_role)
    PERFORM pg_temp.act_as('service_role');
    INSERT INTO public.destinations (name, country, popularity, embedding)
    SELECT 'rlscheck ' || k, 'Testland', k,
           l2_normalize(ARRAY(SELECT sin(j * (k + 1) * 0.37 + k) FROM generate_series(1, 384) j)::vector(384))
    FROM generate_series(1, 12) k;
    SELECT id INTO d1 FROM public.destinations WHERE name = 'rlscheck 1';

    PERFORM pg_temp.act_as('anon');
    PERFORM pg_temp.ok((SELECT count(*) FROM public.destinations) >= 12, 'anon reads destinations');
    PERFORM pg_temp.ok(pg_temp.sqlstate_of('SELECT 1 FROM public.trips') = '42501', 'anon cannot read trips');
    PERFORM pg_temp.ok(pg_temp.sqlstate_of('SELECT 1 FROM public.users') = '42501', 'anon cannot read users');
    PERFORM pg_temp.ok(pg_temp.sqlstate_of('SELECT 1 FROM public.trip_collaborators') = '42501',
                       'anon cannot read trip_collaborators');
    PERFORM pg_temp.ok(pg_temp.sqlstate_of('SELECT 1 FROM public.api_keys') = '42501', 'anon cannot read api_keys');
    PERFORM pg_temp.ok(pg_temp.sqlstate_of('SELECT 1 FROM public.search_history') = '42501',
                       'anon cannot read search_history');
    PERFORM pg_temp.ok(pg_temp.sqlstate_of(
        'INSERT INTO public.destinations (name, country) VALUES (''x'', ''y'')') = '42501',
        'anon cannot write destinations');
    PERFORM pg_temp.ok(pg_temp.sqlstate_of('SELECT public.user_stats()') = '42501',
                       'user_stats needs a signed-in user');

    PERFORM pg_temp.act_as('authenticated', current_setting('rls.alice'));
    PERFORM pg_temp.ok((SELECT count(*) FROM public.destinations) >= 12, 'users read destinations');
    PERFORM pg_temp.ok(pg_temp.sqlstate_of(format(
        'UPDATE public.destinations SET popularity = 0 WHERE id = %s', d1)) = '42501',
        'users cannot write destinations');

    -- match_destinations (as anon, the least privileged caller)
    PERFORM pg_temp.act_as('anon');
    PERFORM pg_temp.ok((SELECT count(*) FROM public.match_destinations(
                            (SELECT embedding FROM public.destinations WHERE id = d1), 10, -1)) = 10,
                       'match_destinations returns match_count rows');
    PERFORM pg_temp.ok((SELECT id = d1 AND similarity > 0.999
                        FROM public.match_destinations(
                            (SELECT embedding FROM public.destinations WHERE id = d1), 10, -1)
                        LIMIT 1),
                       'the nearest destination to a stored embedding is itself (similarity 1)');
    PERFORM pg_temp.ok((SELECT bool_and(s.similarity <= s.prev + 1e-9 AND s.similarity BETWEEN -1.000001 AND 1.000001)
                        FROM (SELECT similarity, lag(similarity, 1, 2.0) OVER (ORDER BY ord) AS prev
                              FROM public.match_destinations(
                                  (SELECT embedding FROM public.destinations WHERE id = d1), 10, -1)
                                   WITH ORDINALITY AS m(id, name, country, description, popularity, similarity, ord)) s),
                       'similarities are in [-1, 1] and non-increasing');
    PERFORM pg_temp.ok((SELECT count(*) FROM public.match_destinations(
                            (SELECT embedding FROM public.destinations WHERE id = d1), 10, 0.999)) = 1,
                       'match_threshold drops the less similar rows');
    PERFORM pg_temp.ok((SELECT count(*) FROM public.match_destinations(
                            (SELECT embedding FROM public.destinations WHERE id = d1), 60, -1))
                       = least(60, (SELECT count(*) FROM public.destinations)),
                       'match_count above ef_search (40) still returns match_count rows');
    PERFORM pg_temp.ok(pg_temp.sqlstate_of(
        'SELECT * FROM public.match_destinations(''[1,2,3]''::vector)') = '22000',
        'a wrong dimension is a data exception (HTTP 400), not an internal error');
END
$$;

-- ---------------------------------------------------------------------------------------------
-- 8. RPC functions under RLS.
DO $$
DECLARE
    s json;
BEGIN
    PERFORM pg_temp.act_as('authenticated', current_setting('rls.alice'));
    s := public.user_stats();
    PERFORM pg_temp.ok((s ->> 'trip_count')::int = 2 AND (s ->> 'shared_trip_count')::int = 0
                       AND (s ->> 'search_count')::int = 2 AND (s ->> 'api_key_count')::int = 1
                       AND (s ->> 'upcoming_trip_count')::int = 2,
                       'user_stats for alice: ' || s::text);
    PERFORM pg_temp.act_as('authenticated', current_setting('rls.bob'));
    s := public.user_stats();
    PERFORM pg_temp.ok((s ->> 'trip_count')::int = 1 AND (s ->> 'shared_trip_count')::int = 1
                       AND (s ->> 'search_count')::int = 0 AND (s ->> 'api_key_count')::int = 0
                       AND (s ->> 'upcoming_trip_count')::int = 1,
                       'user_stats for bob: ' || s::text);

    -- search_trips sees exactly what trips' RLS shows
    PERFORM pg_temp.ok((SELECT count(*) FROM public.search_trips('rlscheck')) = 2,
                       'bob''s search finds his trip and the shared one');
    PERFORM pg_temp.ok((SELECT count(*) FROM public.search_trips('private trip')) = 0,
                       'bob''s search does not find alice''s unshared trip');
    PERFORM pg_temp.ok((SELECT count(*) FROM public.search_trips('ZZRLSNOTE')) = 1,
                       'search_trips matches notes, case-insensitively');
    PERFORM pg_temp.ok((SELECT count(*) FROM public.search_trips('rlscheck', 'completed')) = 0,
                       'search_trips filters on status');
    PERFORM pg_temp.ok((SELECT count(*) FROM public.search_trips('rlscheck%')) = 0,
                       'search_trips takes q literally (% is not a wildcard)');
    PERFORM pg_temp.ok((SELECT count(*) FROM public.search_trips('rlscheck', NULL, 1, 1)) = 1,
                       'search_trips pages with lim/off');
END
$$;

-- ---------------------------------------------------------------------------------------------
-- 9. Deleting: only the owner, and it cascades.
DO $$
DECLARE
    a1 bigint := current_setting('rls.a1');
BEGIN
    PERFORM pg_temp.act_as('authenticated', current_setting('rls.carol'));
    PERFORM pg_temp.ok(pg_temp.affected(format('DELETE FROM public.trips WHERE id = %s', a1)) = 0,
                       'carol (edit) still cannot delete');
    PERFORM pg_temp.act_as('authenticated', current_setting('rls.alice'));
    PERFORM pg_temp.ok(pg_temp.affected(format('DELETE FROM public.trips WHERE id = %s', a1)) = 1,
                       'alice deletes her shared trip');
    PERFORM pg_temp.act_as('service_role');
    PERFORM pg_temp.ok((SELECT count(*) FROM public.trip_collaborators WHERE trip_id = a1) = 0,
                       'deleting a trip removes its collaborators');
END
$$;

-- ---------------------------------------------------------------------------------------------
-- 10. The demo seed (db/seed/001_demo.sql), when it is loaded: the documented sharing works.
DO $$
DECLARE
    alice text := '11111111-1111-1111-1111-111111111111';
    bob   text := '22222222-2222-2222-2222-222222222222';
    carol text := '33333333-3333-3333-3333-333333333333';
    seeded boolean;
BEGIN
    PERFORM pg_temp.act_as('service_role');
    seeded := EXISTS (SELECT 1 FROM public.trip_collaborators WHERE trip_id = 1 AND user_id = bob::uuid);
    IF NOT seeded THEN
        RAISE NOTICE 'rls_check: demo seed not loaded, section 10 skipped';
        RETURN;
    END IF;
    PERFORM pg_temp.ok((SELECT count(*) FROM public.destinations WHERE id <= 5000) = 5000,
                       'seed: 5000 destinations');

    PERFORM pg_temp.act_as('authenticated', alice);
    PERFORM pg_temp.ok((SELECT count(*) FROM public.trips WHERE user_id = alice::uuid) = 3,
                       'seed: alice sees her 3 trips');
    PERFORM pg_temp.act_as('authenticated', bob);
    PERFORM pg_temp.ok((SELECT count(*) FROM public.trips WHERE id = 1) = 1, 'seed: bob sees trip 1');
    PERFORM pg_temp.ok(pg_temp.affected('UPDATE public.trips SET travelers = 9 WHERE id = 1') = 0,
                       'seed: bob (view) cannot update trip 1');
    PERFORM pg_temp.act_as('authenticated', carol);
    PERFORM pg_temp.ok(pg_temp.affected('UPDATE public.trips SET travelers = 9 WHERE id = 1') = 1,
                       'seed: carol (edit) can update trip 1');
    PERFORM pg_temp.ok(pg_temp.affected('DELETE FROM public.trips WHERE id = 1') = 0,
                       'seed: carol cannot delete trip 1');
    PERFORM pg_temp.act_as('anon');
    PERFORM pg_temp.ok((SELECT count(*) FROM public.match_destinations(
                            (SELECT embedding FROM public.destinations WHERE id = 1), 10, 0)) = 10,
                       'seed: 10 matches for a seeded embedding');
END
$$;

ROLLBACK;
\echo rls_check: all checks passed
