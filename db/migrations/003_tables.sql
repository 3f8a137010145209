-- 003_tables.sql - the application tables, their indexes, updated_at triggers and grants.
--
-- Tables: users, trips, trip_collaborators, api_keys, api_key_usage_logs, search_history,
-- destinations (see issue 2). Row access is decided by RLS (004_rls.sql); the grants below
-- only say which roles may touch a table at all:
--   authenticated, service_role: SELECT/INSERT/UPDATE/DELETE on every table;
--   anon: SELECT on destinations only (anything else is "permission denied", 42501).
-- Columns that hold the owner default to auth.uid(), so an insert may omit them.
-- Schema `private` holds helpers that must not be reachable as RPCs (/rest/v1/rpc only
-- exposes public): trigger functions here, RLS helper functions in 004.

CREATE SCHEMA IF NOT EXISTS private;
REVOKE ALL ON SCHEMA private FROM PUBLIC;
GRANT USAGE ON SCHEMA private TO authenticated, service_role;

-- ---------------------------------------------------------------------------------------------
-- users: one row per signed-in person; id is the JWT sub.
CREATE TABLE public.users (
    id          uuid PRIMARY KEY DEFAULT auth.uid(),
    email       text NOT NULL UNIQUE,
    full_name   text,
    preferences jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- ---------------------------------------------------------------------------------------------
-- trips: owned by user_id; shared through trip_collaborators.
CREATE TABLE public.trips (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     uuid NOT NULL DEFAULT auth.uid() REFERENCES public.users (id) ON DELETE CASCADE,
    name        text NOT NULL,
    destination text NOT NULL,
    start_date  date,
    end_date    date,
    budget      numeric(12,2) CHECK (budget >= 0),
    travelers   integer NOT NULL DEFAULT 1 CHECK (travelers > 0),
    status      text NOT NULL DEFAULT 'planning'
                CHECK (status IN ('planning', 'booked', 'in_progress', 'completed', 'cancelled')),
    trip_type   text NOT NULL DEFAULT 'leisure'
                CHECK (trip_type IN ('leisure', 'business', 'family', 'adventure', 'other')),
    notes       text[] NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT trips_dates_check CHECK (end_date >= start_date)
);
-- "my trips, newest first" and "everything I can see, newest first".
CREATE INDEX trips_user_id_created_at_idx ON public.trips (user_id, created_at DESC);
CREATE INDEX trips_created_at_idx ON public.trips (created_at DESC);

-- ---------------------------------------------------------------------------------------------
-- trip_collaborators: who else may see (view) or change (edit, admin) a trip.
CREATE TABLE public.trip_collaborators (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    trip_id          bigint NOT NULL REFERENCES public.trips (id) ON DELETE CASCADE,
    user_id          uuid NOT NULL REFERENCES public.users (id) ON DELETE CASCADE,
    permission_level text NOT NULL DEFAULT 'view'
                     CHECK (permission_level IN ('view', 'edit', 'admin')),
    added_by         uuid DEFAULT auth.uid() REFERENCES public.users (id) ON DELETE SET NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT trip_collaborators_trip_id_user_id_key UNIQUE (trip_id, user_id)
);
-- (trip_id, ...) is served by the unique index; "trips shared with me" needs user_id.
CREATE INDEX trip_collaborators_user_id_idx ON public.trip_collaborators (user_id);

-- ---------------------------------------------------------------------------------------------
-- api_keys: a user's own keys for third-party services, encrypted by tide before storage.
CREATE TABLE public.api_keys (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id       uuid NOT NULL DEFAULT auth.uid() REFERENCES public.users (id) ON DELETE CASCADE,
    service_name  text NOT NULL,
    key_name      text NOT NULL,
    encrypted_key text NOT NULL,
    key_hash      text NOT NULL,
    is_active     boolean NOT NULL DEFAULT true,
    last_used_at  timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT api_keys_user_id_service_name_key_name_key UNIQUE (user_id, service_name, key_name)
);
-- The unique index starts with user_id and already serves per-user lookups; this one is the
-- plain access path the issue lists (cheap: one narrow index on a small table).
CREATE INDEX api_keys_user_id_idx ON public.api_keys (user_id);

CREATE TABLE public.api_key_usage_logs (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    api_key_id uuid NOT NULL REFERENCES public.api_keys (id) ON DELETE CASCADE,
    user_id    uuid NOT NULL DEFAULT auth.uid() REFERENCES public.users (id) ON DELETE CASCADE,
    used_at    timestamptz NOT NULL DEFAULT now(),
    details    jsonb
);
CREATE INDEX api_key_usage_logs_api_key_id_idx ON public.api_key_usage_logs (api_key_id, used_at DESC);
CREATE INDEX api_key_usage_logs_user_id_idx ON public.api_key_usage_logs (user_id, used_at DESC);

-- ---------------------------------------------------------------------------------------------
-- search_history: what a user searched for (query is the client's JSON).
CREATE TABLE public.search_history (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     uuid NOT NULL DEFAULT auth.uid() REFERENCES public.users (id) ON DELETE CASCADE,
    search_type text NOT NULL,
    query       jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX search_history_user_id_created_at_idx ON public.search_history (user_id, created_at DESC);

-- ---------------------------------------------------------------------------------------------
-- destinations: public catalogue with 384-dim embeddings for similarity search.
CREATE TABLE public.destinations (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL,
    country     text NOT NULL,
    description text,
    popularity  integer NOT NULL DEFAULT 0,
    embedding   vector(384),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX destinations_popularity_idx ON public.destinations (popularity DESC);
-- Cosine KNN (ORDER BY embedding <=> q LIMIT n); see match_destinations() in 005.
CREATE INDEX destinations_embedding_hnsw_idx ON public.destinations
    USING hnsw (embedding vector_cosine_ops);

-- ---------------------------------------------------------------------------------------------
-- Triggers.

-- updated_at follows every UPDATE, whatever the client sent.
CREATE FUNCTION private.set_updated_at() RETURNS trigger
LANGUAGE plpgsql
SET search_path = ''
AS $$
BEGIN
    NEW.updated_at := pg_catalog.now();
    RETURN NEW;
END
$$;

CREATE TRIGGER users_set_updated_at BEFORE UPDATE ON public.users
    FOR EACH ROW EXECUTE FUNCTION private.set_updated_at();
CREATE TRIGGER trips_set_updated_at BEFORE UPDATE ON public.trips
    FOR EACH ROW EXECUTE FUNCTION private.set_updated_at();

-- A trip's owner never changes through RLS-governed access. RLS alone cannot express this:
-- permissive UPDATE policies are OR-ed, so an edit collaborator's new row with
-- user_id = themselves would pass the owner policy's WITH CHECK and take the trip over.
-- service_role and the superuser (row_security_active() false for them) may still move trips.
CREATE FUNCTION private.trips_keep_owner() RETURNS trigger
LANGUAGE plpgsql
SET search_path = ''
AS $$
BEGIN
    IF pg_catalog.row_security_active('public.trips'::pg_catalog.regclass) THEN
        RAISE EXCEPTION 'the owner of a trip cannot be changed'
            USING ERRCODE = 'insufficient_privilege', HINT = 'user_id is fixed when the trip is created';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER trips_keep_owner BEFORE UPDATE ON public.trips
    FOR EACH ROW WHEN (NEW.user_id IS DISTINCT FROM OLD.user_id)
    EXECUTE FUNCTION private.trips_keep_owner();

REVOKE ALL ON FUNCTION private.set_updated_at(), private.trips_keep_owner() FROM PUBLIC;

-- ---------------------------------------------------------------------------------------------
-- Grants (RLS in 004 narrows the rows).
GRANT SELECT, INSERT, UPDATE, DELETE ON
    public.users, public.trips, public.trip_collaborators, public.api_keys,
    public.api_key_usage_logs, public.search_history, public.destinations
    TO authenticated, service_role;
REVOKE INSERT, UPDATE, DELETE ON public.destinations FROM authenticated;
GRANT SELECT ON public.destinations TO anon;
-- No sequence grants: an INSERT fills identity columns without any right on their sequence
-- (checked), and USAGE would only let clients burn ids with nextval().
