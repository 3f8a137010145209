-- 007_cache_notify.sql - writes tell tide's result cache what changed (issue 9).
--
-- tide caches results tagged `<table>` (the whole table), `<table>/<key>` (one row key) and
-- `<table>/*` (some unknown keys). A write from anywhere (tide, psql, a job, a cascade) must
-- invalidate them, so watched tables carry statement-level AFTER triggers that NOTIFY channel
-- `tide_cache` once per affected key; tide LISTENs on a dedicated connection
-- (runtime/listen.c). NOTIFY is transactional: nothing is sent for a rolled-back write, and
-- the notifications of one transaction arrive together at its commit (identical payloads in
-- one transaction are sent once).
--
-- Payload: `<table>/<key>`
--   <table>  the table's name for schema public, else `schema.table` (names as stored, unquoted)
--   <key>    the key column's value as text (::text, so any type), lower-cased; distinct keys
--            only; an UPDATE sends its old and its new key when they differ
--   `<table>/*` (one notification, instead of per-key ones) when the statement touched more
--            than 64 distinct keys, for TRUNCATE, when a key is NULL, empty, longer than 200
--            bytes or holds anything outside [a-z0-9_.:-] after lower-casing, or when the key
--            column no longer exists (renamed or dropped after cache_watch).
-- A statement that touched no row sends nothing.
--
-- Transition tables need one trigger per event (Postgres refuses REFERENCING on a trigger
-- for INSERT OR UPDATE), so a watched table has four: tide_cache_ins, tide_cache_upd,
-- tide_cache_del (statement-level, with transition tables) and tide_cache_trunc.
--
-- Privileges: cache_notify() is SECURITY INVOKER and runs as whoever wrote (anon,
-- authenticated under RLS, ...). Postgres checks EXECUTE on a trigger function only when the
-- trigger is created, not when it fires; transition tables are the statement's own rows and
-- need no grant and no policy; pg_notify() needs no privilege; pg_attribute is readable by
-- all. So callers need nothing on schema tide_meta, and the write never fails for lack of
-- a right here. cache_watch()/cache_unwatch() are for the schema's owner (migrations): no
-- EXECUTE for PUBLIC.

-- ---------------------------------------------------------------------------------------------
-- The trigger function. TG_ARGV[0] is the key column's name.
CREATE OR REPLACE FUNCTION tide_meta.cache_notify() RETURNS trigger
LANGUAGE plpgsql
SET search_path = ''
AS $$
DECLARE
    tbl   text := CASE WHEN TG_TABLE_SCHEMA = 'public' THEN TG_TABLE_NAME
                       ELSE TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME END;
    col   text := TG_ARGV[0];
    src   text;
    keys  text[];
    bad   boolean;
BEGIN
    IF TG_OP = 'TRUNCATE' OR col IS NULL OR NOT EXISTS (
        SELECT 1 FROM pg_catalog.pg_attribute a
        WHERE a.attrelid = TG_RELID AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped
    ) THEN
        PERFORM pg_catalog.pg_notify('tide_cache', tbl || '/*');
        RETURN NULL;
    END IF;
    src := CASE TG_OP
        WHEN 'INSERT' THEN pg_catalog.format('SELECT %I::text AS k FROM tide_new', col)
        WHEN 'DELETE' THEN pg_catalog.format('SELECT %I::text AS k FROM tide_old', col)
        ELSE pg_catalog.format('SELECT %1$I::text AS k FROM tide_old UNION ALL '
                               'SELECT %1$I::text AS k FROM tide_new', col)
    END;
    -- 65 distinct keys are enough to know there are more than 64; the pattern is checked on
    -- those few only (per row it would cost more than the write on a large statement).
    EXECUTE pg_catalog.format(
        'SELECT pg_catalog.array_agg(d.k), '
        '       pg_catalog.bool_or(d.k IS NULL OR d.k !~ ''^[a-z0-9_.:-]{1,200}$'') '
        'FROM (SELECT DISTINCT pg_catalog.lower(r.k) AS k FROM (%s) r LIMIT 65) d', src)
        INTO keys, bad;
    IF keys IS NULL THEN
        RETURN NULL;                                   -- no row touched
    END IF;
    IF bad OR pg_catalog.cardinality(keys) > 64 THEN
        PERFORM pg_catalog.pg_notify('tide_cache', tbl || '/*');
    ELSE
        PERFORM pg_catalog.pg_notify('tide_cache', tbl || '/' || k)
        FROM pg_catalog.unnest(keys) AS k;
    END IF;
    RETURN NULL;
END
$$;

-- ---------------------------------------------------------------------------------------------
-- (Re)creates the four triggers on tbl with key_column as the key. Idempotent. Raises 42703
-- when the column does not exist and 42809 for anything but a table or a partitioned table.
CREATE OR REPLACE FUNCTION tide_meta.cache_watch(tbl regclass, key_column text) RETURNS void
LANGUAGE plpgsql
SET search_path = ''
AS $$
DECLARE
    kind "char";
BEGIN
    SELECT c.relkind INTO kind FROM pg_catalog.pg_class c WHERE c.oid = tbl;
    IF kind IS NULL OR kind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION 'cache_watch: % is not a table', tbl USING ERRCODE = 'wrong_object_type';
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM pg_catalog.pg_attribute a
        WHERE a.attrelid = tbl AND a.attname = key_column AND a.attnum > 0 AND NOT a.attisdropped
    ) THEN
        RAISE EXCEPTION 'cache_watch: % has no column %', tbl, pg_catalog.quote_ident(key_column)
            USING ERRCODE = 'undefined_column';
    END IF;
    PERFORM tide_meta.cache_unwatch(tbl);
    EXECUTE pg_catalog.format(
        'CREATE TRIGGER tide_cache_ins AFTER INSERT ON %s REFERENCING NEW TABLE AS tide_new '
        'FOR EACH STATEMENT EXECUTE FUNCTION tide_meta.cache_notify(%L)', tbl, key_column);
    EXECUTE pg_catalog.format(
        'CREATE TRIGGER tide_cache_upd AFTER UPDATE ON %s '
        'REFERENCING OLD TABLE AS tide_old NEW TABLE AS tide_new '
        'FOR EACH STATEMENT EXECUTE FUNCTION tide_meta.cache_notify(%L)', tbl, key_column);
    EXECUTE pg_catalog.format(
        'CREATE TRIGGER tide_cache_del AFTER DELETE ON %s REFERENCING OLD TABLE AS tide_old '
        'FOR EACH STATEMENT EXECUTE FUNCTION tide_meta.cache_notify(%L)', tbl, key_column);
    EXECUTE pg_catalog.format(
        'CREATE TRIGGER tide_cache_trunc AFTER TRUNCATE ON %s '
        'FOR EACH STATEMENT EXECUTE FUNCTION tide_meta.cache_notify(%L)', tbl, key_column);
END
$$;

-- Drops the triggers cache_watch created on tbl (none there is fine).
CREATE OR REPLACE FUNCTION tide_meta.cache_unwatch(tbl regclass) RETURNS void
LANGUAGE plpgsql
SET search_path = ''
AS $$
DECLARE
    t name;
BEGIN
    -- only the ones there: DROP TRIGGER IF EXISTS would print a NOTICE for every other one
    FOR t IN SELECT g.tgname FROM pg_catalog.pg_trigger g
             WHERE g.tgrelid = tbl AND g.tgname IN ('tide_cache_ins', 'tide_cache_upd',
                                                    'tide_cache_del', 'tide_cache_trunc') LOOP
        EXECUTE pg_catalog.format('DROP TRIGGER %I ON %s', t, tbl);
    END LOOP;
END
$$;

REVOKE ALL ON FUNCTION tide_meta.cache_notify(), tide_meta.cache_watch(regclass, text),
    tide_meta.cache_unwatch(regclass) FROM PUBLIC;

-- ---------------------------------------------------------------------------------------------
-- The demo tables. trip_collaborators is keyed by its trip: `trip_collaborators/7` means "the
-- collaborators of trip 7", the way the scripts read them.
SELECT tide_meta.cache_watch('public.trips', 'id');
SELECT tide_meta.cache_watch('public.trip_collaborators', 'trip_id');
SELECT tide_meta.cache_watch('public.users', 'id');
SELECT tide_meta.cache_watch('public.destinations', 'id');
SELECT tide_meta.cache_watch('public.search_history', 'id');
SELECT tide_meta.cache_watch('public.api_keys', 'id');
