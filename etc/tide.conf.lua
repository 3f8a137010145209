-- etc/tide.conf.lua: tide's configuration (read once at start; restart to change it).
-- Environment variables override these values (docs/configuration.md says which key each
-- overrides; `tide check` prints it beside the key):
--   TIDE_HTTP_PORT, TIDE_ADMIN_PORT, TIDE_JWT_SECRET, TIDE_ENCRYPTION_KEY,
--   TIDE_JWT_AUDIENCE, TIDE_JWT_ISSUER, TIDE_JWT_REQUIRE_EXP (0 or 1), TIDE_ADMIN_TOKEN,
--   TIDE_DSN_DIRECT, TIDE_DSN_SESSION, TIDE_DSN_TRANSACTION, TIDE_DSN_REPLICA,
--   TIDE_SCRIPTS_DIR, TIDE_POLICIES_DIR, TIDE_BINDINGS_DIR, TIDE_LOG_LEVEL, TIDE_DEV,
--   TIDE_HTTP_MAX_INFLIGHT_BODY_BYTES, TIDE_HTTP_MAX_CONNECTIONS_PER_CLIENT,
--   TIDE_HTTP_MAX_UNSENT_BYTES,
--   TIDE_CACHE_MAX_BYTES, TIDE_CACHE_CHANNEL, TIDE_REST_NOTIFY_CHANNEL, TIDE_WORKERS,
--   TIDE_SUPERVISE (0 or 1), TIDE_WATCHDOG_MS, TIDE_NICE, TIDE_SCRIPT_MAX_CPU_MS,
--   TIDE_SCRIPT_MAX_MEMORY, TIDE_LOG_BUFFER_BYTES, TIDE_LOG_SLOW_QUERY_MS
-- The secrets below are published with tide, so tide refuses them unless development mode is
-- asked for (`tide serve --dev` or TIDE_DEV=1; `make run` and `make test` ask). Anywhere else,
-- set your own: TIDE_JWT_SECRET (openssl rand -base64 48) and TIDE_ENCRYPTION_KEY
-- (openssl rand -hex 32); the admin token below is ignored there until TIDE_ADMIN_TOKEN sets
-- one.
-- The defaults live in C (runtime/config.c's schema table: type, bounds, default and
-- environment variable of every key); the values below repeat them for reading, and the test
-- suite checks that they do (spec/unit/schema_spec.lua, against `tide check --schema`). A key
-- left out takes its default, a misspelt one is refused. `tide check` prints the effective
-- values (secrets masked).
return {
  listen = { host = "127.0.0.1", port = 8080 },
  -- The admin listener (/health, /metrics, /admin/stats, ...): keep it on 127.0.0.1 or a
  -- private network. It answers only requests naming it as localhost, an IP address or this
  -- host. token: the bearer token that POST /admin/* (cache flush, statistics reset) needs
  -- (`Authorization: Bearer <token>`, at least 16 characters); without one those are refused.
  -- The one below is published: accepted in development mode only (elsewhere ignored, with a
  -- warning); set your own with TIDE_ADMIN_TOKEN (openssl rand -hex 24).
  admin  = { host = "127.0.0.1", port = 8081,
             token = "tide-local-development-admin-token-change-me" },
  log_level = "info",
  -- Logs never block serving: stdout (JSON lines) and stderr each go through a buffer of
  -- buffer_bytes; when their reader falls that far behind, lines are dropped and counted
  -- (/admin/stats "log"). A database call that takes slow_query_ms or longer gets a
  -- slow_query line (0 = none).
  log = { buffer_bytes = 1048576, slow_query_ms = 500 },

  jwt = {
    -- HS256 secret shared with whoever issues tokens (at least 32 characters).
    secret = "tide-local-development-jwt-secret-change-me-0001",
    leeway = 30,           -- seconds of clock skew allowed on exp/nbf
    -- A token without exp is refused (401 TIDE_JWT_INVALID "token has no exp claim").
    -- Default true: Supabase and `tide token` always set exp; false lets exp-less tokens in,
    -- and such a token is valid forever.
    require_exp = true,
    -- audience (string; default unset: aud is not checked). When set, the token's aud (a
    -- string, or an array of strings) must contain it, and a token without aud is refused
    -- (401 TIDE_JWT_AUDIENCE). Like PostgREST's jwt-aud; Supabase's user tokens carry
    -- aud "authenticated". `tide token` mints tokens with this aud ("authenticated" if unset).
    -- audience = "authenticated",
    -- issuer (string; default unset: iss is not checked). When set, iss must equal it
    -- (401 TIDE_JWT_ISSUER), e.g. "https://<project>.supabase.co/auth/v1".
    -- issuer = "https://auth.example.com",
  },

  -- AES-256-GCM key (64 hex chars) sealing users' stored API keys.
  crypto = { key = "6c6f63616c2d6465762d6b65792d6368616e67652d6d652d706c656173652121" },

  paths = { bindings = "bindings", scripts = "scripts", policies = "policies" },

  http = {
    max_header_bytes = 16384,   -- larger request heads get 431
    max_body_bytes = 1048576,   -- larger bodies get 413
    read_timeout = 10,          -- seconds to receive a whole request (else 408)
    idle_timeout = 60,          -- seconds an idle keep-alive connection is kept
    max_connections = 20000,
    -- Request bodies held at once by all connections together, counted as their bytes
    -- arrive and released when the request is answered: a body that would go over it gets
    -- 503 with Retry-After: 1 (code TIDE_BUSY). Must be larger than max_body_bytes.
    max_inflight_body_bytes = 67108864,
    -- Open connections from one IP address; more are reset at accept (0 = no cap). Behind a
    -- load balancer or reverse proxy every connection comes from it: set 0 (or its share).
    max_connections_per_client = 256,
    -- Answers waiting for clients that do not read them, all connections together (what the
    -- socket did not take, until the client has read it). When a new answer finds the others
    -- holding more, the connections whose clients have gone longest without reading are reset.
    max_unsent_bytes = 67108864,
  },

  -- What one request's script may use (docs/scripts.md "When a script misbehaves"):
  -- max_cpu_ms of Lua time (a route may have its own in policies/sandbox.lua), and the
  -- bundle's Lua state at most max_memory bytes. Past either the request is stopped with
  -- 500 TIDE_SCRIPT_TIMEOUT or TIDE_SCRIPT_MEMORY; everything else carries on.
  script = { max_cpu_ms = 500, max_memory = 268435456 },

  -- Worker processes sharing listen.port (0: one per CPU), under a parent that supervises
  -- them. Each has its own admin listener on admin.port + its index (with one worker,
  -- admin.port), and pools of pool.size / workers connections (README "Workers").
  workers = 1,
  -- A parent supervises even one worker: it restarts a worker that dies, and one whose event
  -- loop has not beaten for watchdog_ms (a script stuck inside one long C call), at once and
  -- with the last bundle that loaded. supervise = false with workers = 1: one process, no
  -- parent, no restarts (under a debugger). watchdog_ms: 0 = no loop watchdog, else >= 100.
  supervise = true,
  watchdog_ms = 2000,

  -- The scheduling priority tide serves at (nice value, -20..19; 0: unchanged). On a host that
  -- shares its cores with Postgres, -5 keeps the backends from waiting on tide's event loop
  -- (README "Sharing a host with Postgres"); below 0 needs root or CAP_SYS_NICE.
  nice = 0,

  -- The result cache (policies/cache.lua says what is cached). max_bytes bounds all entries
  -- with their keys and bookkeeping (0 turns the cache off). channel: the NOTIFY channel that
  -- db/migrations' trigger tide_meta.cache_notify() uses for writes from anywhere; tide
  -- LISTENs on it over a connection of its own to `direct` ("" = hear nothing: entries then
  -- live out their ttl whatever others write).
  cache = { max_bytes = 67108864, channel = "tide_cache" },

  -- /rest/v1 (tide/rest/routes.lua). notify_channel: PostgREST's convention, on the same LISTEN
  -- connection as cache.channel (each worker has its own): `NOTIFY pgrst, 'reload schema'`
  -- (or an empty payload) makes the next /rest/v1 request of every worker re-read the catalog,
  -- so a migration is served without SIGHUP; tide also re-reads it whenever that connection
  -- comes back (notifications sent while it was down are lost). 'reload config' is ignored:
  -- this file is restart-only and policies reload on SIGHUP. "" = no NOTIFY reloads.
  rest = { notify_channel = "pgrst" },

  -- Upstreams: direct (Postgres), session (session-mode pooler), transaction
  -- (transaction-mode pooler), replica (a streaming replica of direct's Postgres, for reads;
  -- left out here, "replica" is direct itself: set upstreams.replica.dsn or TIDE_DSN_REPLICA).
  -- `make run` fills the DSNs from var/stack.env.
  -- prepare: cache named prepared statements per connection. Keep it false on a
  -- transaction-mode pooler unless the pooler tracks prepared statements (PgBouncer >= 1.21
  -- with max_prepared_statements > 0); Debian 12's PgBouncer 1.18 does not.
  -- pool_size and acquire_timeout are accepted here and ignored: the resilience policy
  -- (policies/resilience.lua, pool.size and pool.acquire_timeout) sets them, from the start.
  upstreams = {
    direct      = { dsn = "postgresql://authenticator:tide-dev-password@127.0.0.1:15432/tide",
                    pool_size = 10, prepare = true,  acquire_timeout = 5, connect_timeout = 5 },
    session     = { dsn = "postgresql://authenticator:tide-dev-password@127.0.0.1:15433/tide",
                    pool_size = 10, prepare = true,  acquire_timeout = 5, connect_timeout = 5 },
    transaction = { dsn = "postgresql://authenticator:tide-dev-password@127.0.0.1:15434/tide",
                    pool_size = 10, prepare = false, acquire_timeout = 5, connect_timeout = 5 },
  },
}
