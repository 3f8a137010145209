-- 002_extensions.sql - extensions the schema needs.
--   vector   (pgvector) in public, so the type is plain `vector` everywhere: destinations
--            embeddings, the HNSW index and match_destinations().
--   pgcrypto in schema `extensions` (Supabase's layout), kept out of public so its functions
--            do not show up as RPCs; available as extensions.digest(), extensions.pgp_sym_*()
--            for scripts that prefer hashing/encrypting in SQL. gen_random_uuid() is core.

CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA public;

CREATE SCHEMA IF NOT EXISTS extensions;
CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA extensions;
GRANT USAGE ON SCHEMA extensions TO anon, authenticated, service_role;
