-- 006_api_keys_sealed_v2.sql - API keys sealed bound to their row (format v2) and hashed with
-- a keyed HMAC.
--
-- tide now seals api_keys.encrypted_key as "v2:" + base64(0x02 | nonce | ciphertext | tag),
-- with the row's (user_id, service_name, key_name) as AES-GCM associated data, so a sealed key
-- copied to another row or user does not open there; and key_hash is HMAC-SHA256 under a key
-- derived from tide's crypto key, no longer a plain SHA-256 that anyone with the table could
-- test guesses against. Postgres cannot do either (it never holds tide's key): rows sealed
-- before ("v1:", bound to no row) are re-sealed by `tide reseal`, run once after this
-- migration with tide's config; it touches only v1 rows, so running it again is harmless.
-- Until then tide shows those keys as unreadable (masked_key null, a use is 409) rather than
-- open a ciphertext that proves nothing about where it was found.
--
-- From here on no new v1 text can be written, so the v1 rows tide reseal trusts are the ones
-- that were there before: the CHECK below is NOT VALID, so it holds for every insert and
-- update while the v1 rows already there wait for tide reseal (which writes v2). (It refuses
-- v1 only: anything else that is not a v2 text tide simply cannot open.) Once tide reseal
-- reports no v1 rows left, the table owner may run
--     ALTER TABLE public.api_keys VALIDATE CONSTRAINT api_keys_encrypted_key_not_v1;
-- A tide older than this change writes v1 and so can no longer save keys: deploy tide first.

ALTER TABLE public.api_keys
    ADD CONSTRAINT api_keys_encrypted_key_not_v1 CHECK (encrypted_key NOT LIKE 'v1:%') NOT VALID;

COMMENT ON COLUMN public.api_keys.encrypted_key IS
    'the key sealed by tide: "v2:" base64(0x02 | nonce[12] | AES-256-GCM ciphertext | tag[16]), '
    'associated data = 0x02 then the length-prefixed fields ("api_keys", user_id, service_name, '
    'key_name); "v1:" rows (no associated data) are re-sealed by tide reseal';
COMMENT ON COLUMN public.api_keys.key_hash IS
    'hex HMAC-SHA256 of the key under HMAC-SHA256(crypto key, ''tide api key hash v1''); '
    'a plain SHA-256 in v1 rows until tide reseal';
