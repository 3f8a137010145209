-- bench/data.sql - the benchmark's fixed data set, applied by bench/run.sh as the superuser
-- (psql "$TIDE_DSN_ADMIN" -v ON_ERROR_STOP=1 -f bench/data.sql). Idempotent: everything runs in
-- one transaction that ends by writing the marker row bench.meta('data', 'v1'); when that row is
-- already there the script does nothing (bump the version to force a reload after a change).
--
--   users         1,000: user n (0..999) has id md5('bench-user-' || n)::uuid and the email
--                 bench-user-<n>@bench.invalid.
--   trips         100,000: trip k (1..100000) has id 1000000 + k and belongs to user
--                 (k - 1) % 1000; created_at is a fixed instant plus k minutes. bench/wrk/*.lua
--                 and the generated pgbench scripts compute owner and id the same way.
--   destinations  the demo seed's 5,000 (ids 1..5000, 384-dim unit embeddings); topped up to
--                 5,000 with deterministic vectors only when the stack was seeded without them.
-- Then ANALYZE. Takes a few seconds.
\set ON_ERROR_STOP 1
set client_min_messages = warning;

begin;
create schema if not exists bench;
create table if not exists bench.meta (k text primary key, v text not null,
                                       loaded_at timestamptz not null default now());
select exists (select 1 from bench.meta where k = 'data' and v = 'v1') as bench_loaded \gset
\if :bench_loaded
commit;
\echo bench data: already loaded
\else
-- A partial earlier version: start over (only rows in the bench ranges are touched).
delete from public.trips where id between 1000001 and 1100000;
delete from public.users where email like 'bench-user-%@bench.invalid';

insert into public.users (id, email, full_name, preferences, created_at, updated_at)
select md5('bench-user-' || n)::uuid, 'bench-user-' || n || '@bench.invalid',
       'Bench User ' || n, '{}'::jsonb, timestamptz '2026-01-01 00:00:00+00',
       timestamptz '2026-01-01 00:00:00+00'
from generate_series(0, 999) as n;

insert into public.trips (id, user_id, name, destination, start_date, end_date, budget,
                          travelers, status, trip_type, notes, created_at, updated_at)
overriding system value
select 1000000 + k,
       md5('bench-user-' || ((k - 1) % 1000))::uuid,
       'Bench trip ' || k,
       (array['Kyoto, Japan', 'Lisbon, Portugal', 'Reykjavik, Iceland', 'Chania, Greece',
              'Berlin, Germany', 'El Chalten, Argentina', 'Rome, Italy', 'Paris, France'])
           [1 + k % 8],
       date '2026-01-01' + (k % 700),
       date '2026-01-01' + (k % 700) + 1 + (k % 13),
       (k % 5000) + 100.00,
       1 + k % 6,
       (array['planning', 'booked', 'in_progress', 'completed', 'cancelled'])[1 + k % 5],
       (array['leisure', 'business', 'family', 'adventure', 'other'])[1 + k % 5],
       case when k % 3 = 0 then array['bench note ' || k] else '{}'::text[] end,
       timestamptz '2025-01-01 00:00:00+00' + k * interval '1 minute',
       timestamptz '2025-01-01 00:00:00+00' + k * interval '1 minute'
from generate_series(1, 100000) as k;

-- New trips created through the API get ids above the bench range.
select setval(pg_get_serial_sequence('public.trips', 'id'),
              greatest((select max(id) from public.trips), 1100000));

-- Destinations: top up to 5,000 (the demo seed normally has them all).
select count(*) < 5000 as need_destinations from public.destinations \gset
\if :need_destinations
select setseed(0.1234);
insert into public.destinations (name, country, description, popularity, embedding)
select 'Bench place ' || n, 'Benchland', 'A generated destination.', n % 10000,
       l2_normalize(array(select random() * 2 - 1 from generate_series(1, 384) where n > 0)
                    ::vector(384))
from generate_series(1, 5000 - (select count(*) from public.destinations)) as n;
\endif

insert into bench.meta (k, v) values ('data', 'v1')
on conflict (k) do update set v = excluded.v, loaded_at = now();
commit;
analyze public.users, public.trips, public.destinations, public.search_history;
\echo bench data: loaded
\endif
