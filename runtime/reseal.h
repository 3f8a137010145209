/* reseal.h - `tide reseal`: the one-shot operator step that re-seals API keys stored by
 * earlier versions (v1: bound to no row, hashed with plain SHA-256) in the v2 format that
 * scripts/api_keys.lua writes (AES-256-GCM bound to the row's user_id, service_name and
 * key_name; keyed hash). tide serve never opens a v1 key. */
#ifndef TIDE_RESEAL_H
#define TIDE_RESEAL_H

#include "config.h"

/* Re-seals every v1 row of public.api_keys over upstreams.direct as service_role, in batches
 * of one transaction each. Prints counts on stdout and problems on stderr, never a key.
 * Returns the process exit status: 0 when no v1 row is left, 1 when some could not be opened
 * (wrong crypto key?) or changed meanwhile, 2 on a config or database error. */
int tide_reseal(const tide_config *cfg);

#endif
