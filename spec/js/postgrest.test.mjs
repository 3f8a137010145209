// spec/js/postgrest.test.mjs - @supabase/postgrest-js (pinned in package.json) against tide's
// /rest/v1 on the demo schema, as two users (RLS). Driven by
// spec/integration/postgrest_js_spec.lua, which makes the fixtures and passes them in the
// environment:
//
//   TIDE_TEST_URL            tide's base URL (the client talks to $TIDE_TEST_URL/rest/v1)
//   PGJS_TOKEN_A/B, PGJS_USER_A/B   two users' tokens and ids
//   PGJS_TAG                 the destination every fixture trip has (scopes the reads)
//   PGJS_ECHO_ID             A's trip "echo", shared with B (view): embedding
//   PGJS_W_UPDATE_ID, PGJS_W_DELETE_ID   A's trips for the update and delete checks
//   PGJS_W_SHARE_ID          A's trip shared with B (view) for the upsert check
//
// A's trips (destination PGJS_TAG): alpha (budget 100, travelers 1, planning), bravo (250, 2,
// booked), charlie (900, 3, planning), delta (no budget, 4, planning), echo (50, 5, planning,
// shared with B), plus w-update, w-delete and w-share (budget 1, travelers 9) for the write
// checks, which the read checks leave out (travelers < 9). B's: bob-1 (10), bob-2 (20).
//
// Each check is named; the last line of stdout is the report, JSON:
//   {"client": "<version>", "passed": n, "failed": n,
//    "checks": [{"name", "ok", "error"?}, ...]}
// and the exit code is 0 only when every check passed. `--list` prints the names (one JSON
// array) without touching the network or loading the client, so the busted spec can name its
// tests before anything runs. A check that throws fails with the message; each runs with a
// time limit, and each request has one too.

const checks = []
const check = (name, fn) => checks.push({ name, fn })

// ---- helpers --------------------------------------------------------------------------------

function fail(msg) {
  throw new Error(msg)
}

function show(v) {
  return JSON.stringify(v)
}

function eq(actual, expected, what) {
  if (show(actual) !== show(expected)) {
    fail(`${what}: expected ${show(expected)}, got ${show(actual)}`)
  }
}

// A response without error, with the expected status.
function ok(res, status, what) {
  if (res.error) fail(`${what}: error ${show(res.error)} (status ${res.status})`)
  eq(res.status, status, `${what}: status`)
}

// A response with an error of this code and status, shaped as PostgREST's.
function failsWith(res, code, status, what) {
  if (!res.error) fail(`${what}: expected error ${code}, got data ${show(res.data)} (status ${res.status})`)
  eq(res.error.code, code, `${what}: error.code (message: ${res.error.message})`)
  eq(res.status, status, `${what}: status`)
  if (typeof res.error.message !== 'string' || res.error.message === '') {
    fail(`${what}: error.message is not a non-empty string: ${show(res.error)}`)
  }
  for (const k of ['details', 'hint']) {
    if (!(k in res.error)) fail(`${what}: error has no ${k}: ${show(res.error)}`)
  }
}

function names(rows) {
  return (rows || []).map((r) => r.name)
}

function sorted(list) {
  return [...list].sort()
}

const READ = { lt: 9 } // the read checks' trips: travelers < 9

// ---- reads ----------------------------------------------------------------------------------

check('select.eq', async ({ A, env }) => {
  const res = await A.from('trips').select('name,budget').eq('destination', env.tag).eq('name', 'alpha')
  ok(res, 200, 'eq')
  eq(res.data, [{ name: 'alpha', budget: 100 }], 'rows')
})

check('select.in', async ({ A, env }) => {
  const res = await A.from('trips').select('name').eq('destination', env.tag)
    .in('name', ['alpha', 'bravo', 'no such name']).order('name')
  ok(res, 200, 'in')
  eq(names(res.data), ['alpha', 'bravo'], 'names')
})

check('select.or', async ({ A, env }) => {
  const res = await A.from('trips').select('name').eq('destination', env.tag)
    .lt('travelers', READ.lt).or('budget.gt.500,status.eq.booked').order('name')
  ok(res, 200, 'or')
  eq(names(res.data), ['bravo', 'charlie'], 'names')
})

check('select.operators', async ({ A, env }) => {
  const base = () => A.from('trips').select('name').eq('destination', env.tag).lt('travelers', READ.lt)
  let res = await base().is('budget', null)
  ok(res, 200, 'is null')
  eq(names(res.data), ['delta'], 'is null')
  res = await base().ilike('name', '%RAV%')
  ok(res, 200, 'ilike')
  eq(names(res.data), ['bravo'], 'ilike')
  res = await base().gte('budget', 100).lte('budget', 250).order('name')
  ok(res, 200, 'gte/lte')
  eq(names(res.data), ['alpha', 'bravo'], 'gte/lte')
  res = await base().not('status', 'eq', 'planning')
  ok(res, 200, 'not')
  eq(names(res.data), ['bravo'], 'not.eq')
  res = await base().neq('status', 'planning').like('name', 'b%')
  ok(res, 200, 'neq/like')
  eq(names(res.data), ['bravo'], 'neq/like')
})

check('select.alias_and_cast', async ({ A, env }) => {
  const res = await A.from('trips').select('n:name, travelers::text').eq('destination', env.tag).eq('name', 'alpha')
  ok(res, 200, 'alias/cast')
  eq(res.data, [{ n: 'alpha', travelers: '1' }], 'rows')
})

check('order', async ({ A, env }) => {
  const q = () => A.from('trips').select('name').eq('destination', env.tag).lt('travelers', READ.lt)
  let res = await q().order('budget', { ascending: false, nullsFirst: false })
  ok(res, 200, 'order desc nullslast')
  eq(names(res.data), ['charlie', 'bravo', 'alpha', 'echo', 'delta'], 'desc nullslast')
  res = await q().order('budget', { ascending: true, nullsFirst: true })
  ok(res, 200, 'order asc nullsfirst')
  eq(names(res.data), ['delta', 'echo', 'alpha', 'bravo', 'charlie'], 'asc nullsfirst')
  res = await q().order('status').order('travelers', { ascending: false })
  ok(res, 200, 'two keys')
  eq(names(res.data), ['bravo', 'echo', 'delta', 'charlie', 'alpha'], 'status, travelers desc')
})

check('range.count_exact', async ({ A, env }) => {
  const res = await A.from('trips').select('name', { count: 'exact' }).eq('destination', env.tag)
    .lt('travelers', READ.lt).order('travelers').range(1, 2)
  if (res.error) fail(`range: ${show(res.error)}`)
  eq(res.count, 5, 'count')
  eq(names(res.data), ['bravo', 'charlie'], 'rows 1-2')
  eq(res.status, 206, 'status (a part of 5)')
  const all = await A.from('trips').select('name', { count: 'exact' }).eq('destination', env.tag)
    .lt('travelers', READ.lt)
  ok(all, 200, 'all rows')
  eq(all.count, 5, 'count of all')
  const lim = await A.from('trips').select('name').eq('destination', env.tag).order('name').limit(2)
  ok(lim, 200, 'limit')
  eq(names(lim.data), ['alpha', 'bravo'], 'limit 2')
})

check('count.head', async ({ A, B, env }) => {
  // head: true sends HEAD: the count from Content-Range, no rows
  const res = await A.from('trips').select('*', { count: 'exact', head: true }).eq('destination', env.tag)
    .lt('travelers', READ.lt)
  if (res.error) fail(`head: ${show(res.error)}`)
  eq(res.count, 5, "A's count")
  eq(res.data, null, 'no rows')
  const theirs = await B.from('trips').select('*', { count: 'exact', head: true }).eq('destination', env.tag)
    .lt('travelers', READ.lt)
  eq(theirs.count, 3, "B's count (RLS)")
})

check('single', async ({ A, env }) => {
  const res = await A.from('trips').select('name,travelers').eq('destination', env.tag).eq('name', 'alpha').single()
  ok(res, 200, 'single')
  eq(res.data, { name: 'alpha', travelers: 1 }, 'object')
  const many = await A.from('trips').select('name').eq('destination', env.tag).single()
  failsWith(many, 'PGRST116', 406, 'single over many rows')
  const none = await A.from('trips').select('name').eq('destination', env.tag).eq('name', 'nope').single()
  failsWith(none, 'PGRST116', 406, 'single over no row')
})

check('maybeSingle', async ({ A, env }) => {
  const one = await A.from('trips').select('name').eq('destination', env.tag).eq('name', 'bravo').maybeSingle()
  ok(one, 200, 'one row')
  eq(one.data, { name: 'bravo' }, 'object')
  const none = await A.from('trips').select('name').eq('destination', env.tag).eq('name', 'nope').maybeSingle()
  ok(none, 200, 'no row')
  eq(none.data, null, 'data')
  const many = await A.from('trips').select('name').eq('destination', env.tag).maybeSingle()
  failsWith(many, 'PGRST116', 406, 'many rows')
})

check('csv', async ({ A, env }) => {
  const res = await A.from('trips').select('name,budget').eq('destination', env.tag)
    .in('name', ['alpha', 'delta']).order('name').csv()
  ok(res, 200, 'csv')
  eq(res.data, 'name,budget\nalpha,100.00\ndelta,', 'text')
})

check('error.unknown_table', async ({ A }) => {
  const res = await A.from('no_such_table').select('*')
  failsWith(res, 'PGRST205', 404, 'unknown table')
})

check('error.unknown_column', async ({ A, env }) => {
  const res = await A.from('trips').select('name,no_such_column').eq('destination', env.tag)
  failsWith(res, '42703', 400, 'unknown column')
  if (!res.error.message.includes('no_such_column')) fail(`message does not name the column: ${res.error.message}`)
})

check('error.bad_filter', async ({ A }) => {
  const res = await A.from('trips').select('name').filter('budget', 'nope', '1')
  failsWith(res, 'PGRST100', 400, 'unknown operator')
})

check('rls.two_users', async ({ A, B, env }) => {
  const a = await A.from('trips').select('name,user_id').eq('destination', env.tag).lt('travelers', READ.lt).order('name')
  const b = await B.from('trips').select('name,user_id').eq('destination', env.tag).lt('travelers', READ.lt).order('name')
  ok(a, 200, 'A')
  ok(b, 200, 'B')
  eq(names(a.data), ['alpha', 'bravo', 'charlie', 'delta', 'echo'], "A's rows")
  eq(names(b.data), ['bob-1', 'bob-2', 'echo'], "B's rows (echo is shared with B)")
  for (const r of a.data) eq(r.user_id, env.userA, `owner of ${r.name} as A sees it`)
  for (const r of b.data) eq(r.user_id, r.name === 'echo' ? env.userA : env.userB, `owner of ${r.name}`)
  const peek = await B.from('trips').select('name').eq('destination', env.tag).eq('name', 'alpha')
  ok(peek, 200, 'B asks for A\'s row')
  eq(peek.data, [], 'B sees none of it')
})

check('rls.anon', async ({ anon, env }) => {
  const res = await anon.from('trips').select('name').eq('destination', env.tag)
  failsWith(res, '42501', 401, 'anon on trips')
})

// ---- writes (returning) ---------------------------------------------------------------------

check('insert.returning', async ({ A, env }) => {
  const res = await A.from('trips').insert({ name: 'js-insert', destination: env.tag, budget: 3, travelers: 9 }).select()
  ok(res, 201, 'insert')
  eq(res.data.length, 1, 'rows returned')
  const row = res.data[0]
  eq([row.name, row.user_id, row.budget, row.status], ['js-insert', env.userA, 3, 'planning'], 'row (defaults filled)')
  if (typeof row.id !== 'number') fail(`id: ${show(row.id)}`)
})

check('insert.bulk', async ({ A, env }) => {
  const res = await A.from('trips').insert([
    { name: 'js-bulk-1', destination: env.tag, travelers: 9 },
    { name: 'js-bulk-2', destination: env.tag, travelers: 9, budget: 5 },
  ]).select('name,budget')
  ok(res, 201, 'bulk insert')
  eq(sorted(names(res.data)), ['js-bulk-1', 'js-bulk-2'], 'names')
  eq(res.data.find((r) => r.name === 'js-bulk-1').budget, null, 'a key one object lacks is NULL')
})

check('insert.minimal', async ({ A, env }) => {
  const res = await A.from('trips').insert({ name: 'js-minimal', destination: env.tag, travelers: 9 })
  ok(res, 201, 'insert without select')
  eq(res.data, null, 'no body')
  const seen = await A.from('trips').select('name').eq('destination', env.tag).eq('name', 'js-minimal')
  ok(seen, 200, 'read back')
  eq(names(seen.data), ['js-minimal'], 'it is there')
})

check('insert.rls_refused', async ({ B, env }) => {
  // B cannot insert a trip owned by A (trips_insert WITH CHECK user_id = auth.uid())
  const res = await B.from('trips').insert({ name: 'js-forged', destination: env.tag, user_id: env.userA }).select()
  failsWith(res, '42501', 403, 'insert for someone else')
})

check('upsert.merge', async ({ A, env }) => {
  // users' primary key (id) is the conflict target by default
  const me = await A.from('users').select('id,email').eq('id', env.userA).single()
  ok(me, 200, 'own profile')
  const res = await A.from('users').upsert({ id: env.userA, email: me.data.email, full_name: 'Upserted by js' }).select('id,full_name')
  ok(res, 200, 'upsert that updated (PostgREST 12: 200 when merge-duplicates inserted nothing)')
  eq(res.data, [{ id: env.userA, full_name: 'Upserted by js' }], 'merged row')
})

check('upsert.on_conflict', async ({ A, env }) => {
  const res = await A.from('trip_collaborators')
    .upsert({ trip_id: env.wShareId, user_id: env.userB, permission_level: 'edit' }, { onConflict: 'trip_id,user_id' })
    .select('trip_id,user_id,permission_level')
  ok(res, 200, 'upsert on (trip_id, user_id) that updated')
  eq(res.data, [{ trip_id: env.wShareId, user_id: env.userB, permission_level: 'edit' }], 'updated share')
  const added = await A.from('trip_collaborators')
    .upsert({ trip_id: env.wShareId, user_id: env.userA, permission_level: 'view' }, { onConflict: 'trip_id,user_id' })
    .select('user_id,permission_level')
  ok(added, 201, 'upsert that inserted')
  eq(added.data, [{ user_id: env.userA, permission_level: 'view' }], 'new share')
  const ign = await A.from('trip_collaborators')
    .upsert({ trip_id: env.wShareId, user_id: env.userB, permission_level: 'admin' },
      { onConflict: 'trip_id,user_id', ignoreDuplicates: true })
    .select('permission_level')
  ok(ign, 201, 'ignore-duplicates')
  eq(ign.data, [], 'nothing written, nothing returned')
  const now = await A.from('trip_collaborators').select('permission_level').eq('trip_id', env.wShareId).eq('user_id', env.userB)
  ok(now, 200, 'read back')
  eq(now.data, [{ permission_level: 'edit' }], 'the ignored upsert changed nothing')
})

check('update.returning', async ({ A, B, env }) => {
  const res = await A.from('trips').update({ budget: 111, notes: ['js'] }).eq('id', env.wUpdateId).select('name,budget,notes')
  ok(res, 200, 'update')
  eq(res.data, [{ name: 'w-update', budget: 111, notes: ['js'] }], 'updated row')
  const other = await B.from('trips').update({ budget: 5 }).eq('id', env.wUpdateId).select('name')
  ok(other, 200, "B updating A's trip")
  eq(other.data, [], 'RLS: no row matched')
  const after = await A.from('trips').select('budget').eq('id', env.wUpdateId).single()
  ok(after, 200, 'read back')
  eq(after.data, { budget: 111 }, "B's update changed nothing")
})

check('update.unfiltered_refused', async ({ A, env }) => {
  // the same update with a filter is served (so the refusal below is about the filter)
  const filtered = await A.from('trips').update({ travelers: 9 }).eq('id', env.wUpdateId).select('name')
  ok(filtered, 200, 'a filtered update')
  eq(names(filtered.data), ['w-update'], 'updated row')
  const res = await A.from('trips').update({ budget: 1 }).select('name')
  if (!res.error || !(res.status >= 400 && res.status < 500)) {
    fail(`an update without filters was not refused: status ${res.status}, ${show(res.error || res.data)}`)
  }
})

check('delete.returning', async ({ A, B, env }) => {
  const other = await B.from('trips').delete().eq('id', env.wDeleteId).select('name')
  ok(other, 200, "B deleting A's trip")
  eq(other.data, [], 'RLS: no row matched')
  const res = await A.from('trips').delete().eq('id', env.wDeleteId).select('id,name')
  ok(res, 200, 'delete')
  eq(res.data, [{ id: env.wDeleteId, name: 'w-delete' }], 'deleted row')
  const gone = await A.from('trips').select('name').eq('id', env.wDeleteId)
  ok(gone, 200, 'read back')
  eq(gone.data, [], 'gone')
})

// ---- embedding ------------------------------------------------------------------------------

check('embed.to_many', async ({ A, env }) => {
  const res = await A.from('trips').select('*, trip_collaborators(*)').eq('id', env.echoId)
  ok(res, 200, 'embed')
  eq(res.data.length, 1, 'one trip')
  const t = res.data[0]
  eq(t.name, 'echo', 'the trip')
  if (!Array.isArray(t.trip_collaborators)) fail(`trip_collaborators is not an array: ${show(t)}`)
  eq(t.trip_collaborators.map((c) => [c.user_id, c.permission_level, c.trip_id]),
    [[env.userB, 'view', env.echoId]], 'collaborators')
  const none = await A.from('trips').select('name, trip_collaborators(user_id)').eq('destination', env.tag).eq('name', 'alpha')
  ok(none, 200, 'embed with no related rows')
  eq(none.data, [{ name: 'alpha', trip_collaborators: [] }], 'an empty array')
})

check('embed.to_one', async ({ B, env }) => {
  const res = await B.from('trip_collaborators').select('permission_level, trips(name,user_id)').eq('trip_id', env.echoId)
  ok(res, 200, 'embed to-one')
  eq(res.data, [{ permission_level: 'view', trips: { name: 'echo', user_id: env.userA } }], 'rows')
})

// ---- rpc ------------------------------------------------------------------------------------

check('rpc.setof', async ({ A, B, env }) => {
  const res = await A.rpc('trips_by_title', { q: 'alpha' })
  ok(res, 200, 'rpc')
  if (!Array.isArray(res.data)) fail(`not an array: ${show(res.data)}`)
  if (!names(res.data).includes('alpha')) fail(`alpha not found: ${show(names(res.data))}`)
  for (const r of res.data) eq(r.user_id, env.userA, `owner of ${r.name} (SECURITY INVOKER: RLS applies)`)
  const theirs = await B.rpc('trips_by_title', { q: 'alpha' })
  ok(theirs, 200, 'rpc as B')
  for (const r of res.data) {
    if (theirs.data.some((t) => t.id === r.id)) fail(`B sees A's trip ${r.id} through the function (SECURITY INVOKER)`)
  }
})

check('rpc.filtered_get', async ({ A, env }) => {
  // STABLE: GET is allowed; filters and select apply to the function's rows
  const res = await A.rpc('trips_by_title', { q: 'alpha' }, { get: true }).select('name,destination').eq('destination', env.tag)
  ok(res, 200, 'rpc GET')
  eq(res.data, [{ name: 'alpha', destination: env.tag }], 'rows')
})

check('rpc.scalar', async ({ A }) => {
  const res = await A.rpc('echo_int', { n: 42 })
  ok(res, 200, 'rpc')
  eq(res.data, 42, 'value')
})

check('rpc.unknown_function', async ({ A }) => {
  const res = await A.rpc('no_such_function', { x: 1 })
  failsWith(res, 'PGRST202', 404, 'unknown function')
})

// ---- runner ---------------------------------------------------------------------------------

const CHECK_TIMEOUT_MS = 15000
const REQUEST_TIMEOUT_MS = 10000

function need(name) {
  const v = process.env[name]
  if (!v) {
    console.error(`postgrest.test.mjs: ${name} is not set`)
    process.exit(2)
  }
  return v
}

async function main() {
  if (process.argv.includes('--list')) {
    console.log(JSON.stringify(checks.map((c) => c.name)))
    return
  }
  const env = {
    url: need('TIDE_TEST_URL').replace(/\/$/, '') + '/rest/v1',
    tag: need('PGJS_TAG'),
    userA: need('PGJS_USER_A'),
    userB: need('PGJS_USER_B'),
    echoId: Number(need('PGJS_ECHO_ID')),
    wUpdateId: Number(need('PGJS_W_UPDATE_ID')),
    wDeleteId: Number(need('PGJS_W_DELETE_ID')),
    wShareId: Number(need('PGJS_W_SHARE_ID')),
  }
  const { PostgrestClient } = await import('@supabase/postgrest-js')
  const { readFileSync } = await import('node:fs')
  const version = JSON.parse(readFileSync(new URL('./node_modules/@supabase/postgrest-js/package.json',
    import.meta.url))).version
  // every request gets a time limit: a hung answer fails its check instead of the run
  const timedFetch = (url, init = {}) => fetch(url, { ...init, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
  const client = (token) => new PostgrestClient(env.url, {
    headers: token ? { Authorization: `Bearer ${token}` } : {},
    fetch: timedFetch,
  })
  const ctx = { A: client(need('PGJS_TOKEN_A')), B: client(need('PGJS_TOKEN_B')), anon: client(null), env }
  const results = []
  for (const c of checks) {
    let timer
    try {
      await Promise.race([
        c.fn(ctx),
        new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS) }),
      ])
      results.push({ name: c.name, ok: true })
    } catch (e) {
      results.push({ name: c.name, ok: false, error: String(e && e.message ? e.message : e).slice(0, 2000) })
    } finally {
      clearTimeout(timer)
    }
  }
  const failed = results.filter((r) => !r.ok).length
  for (const r of results) console.error(`${r.ok ? 'ok  ' : 'FAIL'} ${r.name}${r.ok ? '' : ': ' + r.error}`)
  console.log(JSON.stringify({ client: version, node: process.version, passed: results.length - failed, failed, checks: results }))
  process.exitCode = failed ? 1 : 0
}

main().catch((e) => {
  console.error(`postgrest.test.mjs: ${e && e.stack ? e.stack : e}`)
  process.exit(2)
})
