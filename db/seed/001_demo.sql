-- 001_demo.sql - demo data for `make run` (TIDE_SEED=demo). Safe to apply again: every row
-- has a fixed id and is inserted with ON CONFLICT DO NOTHING; the heavy destinations part is
-- skipped when its rows are already there.
--
-- Users (JWT sub = id; mint a token with `tide token --sub <id>`):
--   alice 11111111-1111-1111-1111-111111111111   trips 1, 2, 3 (trip 1 shared: bob view, carol edit)
--   bob   22222222-2222-2222-2222-222222222222   trips 4, 5
--   carol 33333333-3333-3333-3333-333333333333   trips 6, 7
-- Trip dates are relative to the day the seed runs (some upcoming, some past).
-- Destinations: ids 1..5000, generated (unique) names in 40 countries, 384-dim unit
-- embeddings from setseed() + random() called in a fixed order, so every run produces the
-- same vectors (checked: identical md5 over all rows on two fresh databases).
-- Each destination is its country's centre vector plus noise (then normalised), so
-- neighbours share a country with cosine similarity around 0.5 while unrelated ones sit
-- near 0: similarity search has something to find. Applies in about 1.5 s, most of it the
-- HNSW index build.

-- ---------------------------------------------------------------------------------------------
INSERT INTO public.users (id, email, full_name, preferences) VALUES
    ('11111111-1111-1111-1111-111111111111', 'alice@example.com', 'Alice Demo',
     '{"currency": "EUR", "home_airport": "CDG"}'),
    ('22222222-2222-2222-2222-222222222222', 'bob@example.com', 'Bob Demo',
     '{"currency": "USD"}'),
    ('33333333-3333-3333-3333-333333333333', 'carol@example.com', 'Carol Demo', '{}')
ON CONFLICT DO NOTHING;

INSERT INTO public.trips (id, user_id, name, destination, start_date, end_date, budget,
                          travelers, status, trip_type, notes)
OVERRIDING SYSTEM VALUE VALUES
    (1, '11111111-1111-1111-1111-111111111111', 'Kyoto in autumn', 'Kyoto, Japan',
     CURRENT_DATE + 30, CURRENT_DATE + 40, 4200.00, 3, 'planning', 'leisure',
     '{"book the ryokan", "JR pass for everyone"}'),
    (2, '11111111-1111-1111-1111-111111111111', 'Lisbon offsite', 'Lisbon, Portugal',
     CURRENT_DATE + 75, CURRENT_DATE + 78, 2500.00, 1, 'booked', 'business',
     '{"hotel near Baixa"}'),
    (3, '11111111-1111-1111-1111-111111111111', 'Iceland ring road', 'Reykjavik, Iceland',
     CURRENT_DATE - 200, CURRENT_DATE - 186, 6100.00, 2, 'completed', 'adventure', '{}'),
    (4, '22222222-2222-2222-2222-222222222222', 'Family week in Crete', 'Chania, Greece',
     CURRENT_DATE + 120, CURRENT_DATE + 127, 3800.00, 4, 'planning', 'family',
     '{"kids'' passports expire soon"}'),
    (5, '22222222-2222-2222-2222-222222222222', 'Berlin conference', 'Berlin, Germany',
     CURRENT_DATE - 20, CURRENT_DATE - 17, 1200.00, 1, 'completed', 'business', '{}'),
    (6, '33333333-3333-3333-3333-333333333333', 'Patagonia trek', 'El Chalten, Argentina',
     CURRENT_DATE + 160, CURRENT_DATE + 175, 5400.00, 2, 'planning', 'adventure',
     '{"rent crampons", "check the weather windows"}'),
    (7, '33333333-3333-3333-3333-333333333333', 'Weekend in Rome', 'Rome, Italy',
     CURRENT_DATE + 10, CURRENT_DATE + 12, NULL, 2, 'cancelled', 'leisure', '{}')
ON CONFLICT DO NOTHING;

INSERT INTO public.trip_collaborators (id, trip_id, user_id, permission_level, added_by)
OVERRIDING SYSTEM VALUE VALUES
    (1, 1, '22222222-2222-2222-2222-222222222222', 'view', '11111111-1111-1111-1111-111111111111'),
    (2, 1, '33333333-3333-3333-3333-333333333333', 'edit', '11111111-1111-1111-1111-111111111111')
ON CONFLICT DO NOTHING;

INSERT INTO public.search_history (id, user_id, search_type, query)
OVERRIDING SYSTEM VALUE VALUES
    (1, '11111111-1111-1111-1111-111111111111', 'destination', '{"q": "onsen towns"}'),
    (2, '11111111-1111-1111-1111-111111111111', 'flight', '{"from": "CDG", "to": "KIX"}'),
    (3, '22222222-2222-2222-2222-222222222222', 'hotel', '{"city": "Chania", "guests": 4}')
ON CONFLICT DO NOTHING;

-- ---------------------------------------------------------------------------------------------
-- Destinations. Skipped when already seeded. The HNSW index is dropped for the bulk insert
-- and rebuilt from its own definition afterwards (bulk build: ~1 s; 5000 single inserts into
-- the index: ~4 s). Needs pgvector >= 0.7 (vector + vector, l2_normalize).
DO $seed$
DECLARE
    hnsw_def text;
BEGIN
    IF EXISTS (SELECT 1 FROM public.destinations WHERE id = 5000) THEN
        RETURN;
    END IF;

    SELECT indexdef INTO hnsw_def FROM pg_catalog.pg_indexes
    WHERE schemaname = 'public' AND indexname = 'destinations_embedding_hnsw_idx';
    IF hnsw_def IS NOT NULL THEN
        DROP INDEX public.destinations_embedding_hnsw_idx;
    END IF;

    PERFORM setseed(0.4242);

    INSERT INTO public.destinations (id, name, country, description, popularity, embedding)
    OVERRIDING SYSTEM VALUE
    WITH
    countries AS (
        SELECT ord::int - 1 AS k, c AS country
        FROM unnest(ARRAY[
            'Japan', 'Portugal', 'Iceland', 'Greece', 'Germany', 'Argentina', 'Italy',
            'France', 'Spain', 'Morocco', 'Peru', 'Chile', 'Mexico', 'Canada', 'Norway',
            'Sweden', 'Finland', 'Scotland', 'Ireland', 'Croatia', 'Slovenia', 'Austria',
            'Switzerland', 'Turkey', 'Egypt', 'Kenya', 'Tanzania', 'South Africa', 'India',
            'Nepal', 'Vietnam', 'Thailand', 'Indonesia', 'Philippines', 'New Zealand',
            'Australia', 'Brazil', 'Colombia', 'Georgia', 'Jordan']) WITH ORDINALITY AS u(c, ord)
    ),
    -- 5040 raw vectors of 384 uniform numbers in [-1, 1): the 40 country centres (0..39),
    -- then one noise vector per destination (40..5039). The outer series is scanned in
    -- order and the (correlated) inner ARRAY() runs once per row, so random() is called in
    -- a fixed order and the numbers depend only on the seed.
    raw AS MATERIALIZED (
        SELECT v, ARRAY(SELECT random() * 2 - 1 FROM generate_series(1, 384) WHERE v >= 0)
                      ::vector(384) AS xs
        FROM generate_series(0, 40 + 5000 - 1) AS v
    ),
    -- Destination n (1..5000): country k (a fixed scramble so consecutive ids differ) and
    -- embedding = unit(centre(k) + noise(n)).
    dest AS (
        SELECT n, (n * 7 + n / 40) % 40 AS k FROM generate_series(1, 5000) AS n
    )
    SELECT d.n,
           -- (n-1) spelled in mixed radix 16 x 24 x 15: 5760 names, all different.
           (ARRAY['Port', 'San', 'Old', 'New', 'Upper', 'Lower', 'Lake', 'Mount', 'Cape',
                  'Glen', 'Val', 'Santa', 'North', 'South', 'East', 'West'])[1 + (d.n - 1) % 16]
           || ' ' ||
           (ARRAY['Aur', 'Bel', 'Cor', 'Dun', 'Esk', 'Fal', 'Gar', 'Hal', 'Ist', 'Jor', 'Kel',
                  'Lun', 'Mar', 'Nor', 'Orm', 'Pel', 'Quar', 'Ros', 'Sel', 'Tor', 'Ul', 'Ver',
                  'Wyn', 'Zan'])[1 + ((d.n - 1) / 16) % 24]
           || (ARRAY['a', 'ia', 'os', 'en', 'ford', 'haven', 'ville', 'mont', 'ridge', 'wick',
                     'holm', 'dal', 'ora', 'ton', 'by'])[1 + ((d.n - 1) / 384) % 15],
           c.country,
           'A ' || (ARRAY['quiet', 'lively', 'historic', 'remote', 'sunny', 'misty',
                          'colourful', 'windswept'])[1 + (d.n * 3) % 8]
           || ' ' || (ARRAY['coastal town', 'mountain village', 'old city', 'island',
                            'lake district', 'desert oasis', 'wine region', 'national park'])
                     [1 + (d.n * 5 / 3) % 8]
           || ' in ' || c.country || '.',
           -- Skewed popularity in 0..10000: a few famous places, a long tail.
           (10000 * power(((d.n * 2654435761::bigint) % 1000003) / 1000003.0, 4))::int,
           l2_normalize(centre.xs + noise.xs)::vector(384)
    FROM dest d
    JOIN countries c ON c.k = d.k
    JOIN raw centre ON centre.v = d.k
    JOIN raw noise ON noise.v = 40 + d.n - 1
    ON CONFLICT DO NOTHING;

    IF hnsw_def IS NOT NULL THEN
        EXECUTE hnsw_def;
    END IF;
END
$seed$;

-- ---------------------------------------------------------------------------------------------
-- Identity sequences past the fixed ids, so rows created later get fresh ids.
SELECT setval(pg_get_serial_sequence('public.trips', 'id'),
              greatest((SELECT max(id) FROM public.trips), 1));
SELECT setval(pg_get_serial_sequence('public.trip_collaborators', 'id'),
              greatest((SELECT max(id) FROM public.trip_collaborators), 1));
SELECT setval(pg_get_serial_sequence('public.search_history', 'id'),
              greatest((SELECT max(id) FROM public.search_history), 1));
SELECT setval(pg_get_serial_sequence('public.destinations', 'id'),
              greatest((SELECT max(id) FROM public.destinations), 1));

ANALYZE public.users, public.trips, public.trip_collaborators, public.search_history,
        public.destinations;
