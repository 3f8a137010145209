-- 001_roles.sql - Supabase-shaped database roles and the auth.* claim helpers.
--
-- Roles (cluster-wide, so every statement here is idempotent: a second database in the same
-- cluster, or a re-run, must not fail):
--   anon           NOLOGIN   requests without a token
--   authenticated  NOLOGIN   requests with a user token (claims.sub = users.id)
--   service_role   NOLOGIN BYPASSRLS   trusted server-side operations
--   authenticator  LOGIN NOINHERIT     what tide and PgBouncer log in as; it has no rights of
--                  its own and switches per statement with set_config('role', ..., true).
--                  Its password is set by db/stack.sh (never here).
-- auth.uid() / auth.role() / auth.jwt() read the transaction-local setting
-- request.jwt.claims that tide sets before every statement. All three return NULL when the
-- setting is missing or empty (a pooled connection after a transaction-local set_config
-- reverts shows '' rather than "missing"), and never raise for that.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'anon') THEN
        CREATE ROLE anon NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'authenticated') THEN
        CREATE ROLE authenticated NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'service_role') THEN
        CREATE ROLE service_role NOLOGIN BYPASSRLS;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'authenticator') THEN
        CREATE ROLE authenticator LOGIN NOINHERIT;
    END IF;
END
$$;

-- Re-assert the attributes in case a role pre-existed with other ones (never the password).
ALTER ROLE anon NOLOGIN NOBYPASSRLS;
ALTER ROLE authenticated NOLOGIN NOBYPASSRLS;
ALTER ROLE service_role NOLOGIN BYPASSRLS;
ALTER ROLE authenticator LOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;

-- authenticator may SET ROLE to each of the three (NOINHERIT: it never holds their rights
-- implicitly). Granted only when missing, so a re-run stays quiet.
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['anon', 'authenticated', 'service_role'] LOOP
        IF NOT EXISTS (
            SELECT 1 FROM pg_catalog.pg_auth_members m
            WHERE m.roleid = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = r)
              AND m.member = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = 'authenticator')
        ) THEN
            EXECUTE format('GRANT %I TO authenticator', r);
        END IF;
    END LOOP;
END
$$;

CREATE SCHEMA IF NOT EXISTS auth;

-- The caller's user id: claims.sub as uuid. NULL when there are no claims, no sub, or a sub
-- that is not a uuid (e.g. a service token with sub "ci"): policies then simply match nothing.
-- Policies call it as (SELECT auth.uid()) so it is evaluated once per statement.
CREATE OR REPLACE FUNCTION auth.uid() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN s ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                THEN s::uuid END
    FROM (SELECT nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub' AS s) c
$$;

-- The claims' role (anon | authenticated | service_role), NULL without claims.
CREATE OR REPLACE FUNCTION auth.role() RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role'
$$;

-- All claims as jsonb, NULL without claims.
CREATE OR REPLACE FUNCTION auth.jwt() RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT nullif(current_setting('request.jwt.claims', true), '')::jsonb
$$;

GRANT USAGE ON SCHEMA public, auth TO anon, authenticated, service_role;
GRANT EXECUTE ON FUNCTION auth.uid(), auth.role(), auth.jwt() TO anon, authenticated, service_role;
