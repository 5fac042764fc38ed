/**
 * The audit trail (docs/AUDIT.md) against PostgreSQL: concurrent appends make one chain; operators' and
 * administrators' actions through the API become entries with their names, in the action's transaction; and any
 * change to a stored entry (each field, a deletion, an insertion, a rewrite with recomputed hashes against a published
 * head) is named by both the API's verify and `npm run audit:verify`, run as a child process.
 * Scoping of the read API and who may verify: test/access-matrix-audit.test.ts.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import pg from 'pg'
import { apiWithToken, createUnitAt, loginAt, startTestApp, type ApiCall, type TestApp } from './helpers/env.js'
import { runAuditVerify } from './helpers/audit-cli.js'
import type { AuditEntry } from '../src/audit/audit-log.js'
import type { VerifyResult } from '../src/audit/verify.js'
import { chainHash, TIME_TEXT } from '../src/audit/canonical.js'
import type { Alert } from '../schemas/alerts.js'

let t: TestApp
/** A superuser connection to the app's database: the attacker of the tampering tests. */
let su: pg.Client
let databaseUrl: string

beforeAll(async () => {
  t = await startTestApp()
  databaseUrl = `postgres://postgres@127.0.0.1:5432/${t.names.database}`
  su = new pg.Client({ connectionString: databaseUrl })
  await su.connect()
})
afterAll(async () => {
  await su?.end()
  await t?.dispose()
})

const verify = (query = '') => t.api<VerifyResult>('GET', `/api/v1/audit/verify${query}`)
const entries = async (query: string) => {
  const r = await t.api<{ items: AuditEntry[]; total: number }>('GET', `/api/v1/audit?${query}`)
  expect(r.status, JSON.stringify(r.body)).toBe(200)
  return r.body
}
const head = async () => (await t.app.audit.verify()).head!
const probe = (subjectId: string, detail: Record<string, unknown> = {}) =>
  ({ actor: 'probe', action: 'test.appended', subjectKind: 'test', subjectId, jurisdictionId: null, detail }) as const

describe('appending', () => {
  it('200 concurrent appends make one chain: seq without a gap, each entry linked to the one before', async () => {
    const before = (await t.app.audit.verify()).head?.seq ?? 0
    const made = await Promise.all(Array.from({ length: 200 }, (_, i) => t.app.audit.record(probe(`s${i}`, { i }))))
    expect(made.map((e) => e.seq).sort((a, b) => a - b)).toEqual(Array.from({ length: 200 }, (_, i) => before + 1 + i))
    const { rows } = await su.query<{ seq: string; prev_hash: string; hash: string }>('SELECT seq, prev_hash, hash FROM audit_log ORDER BY seq')
    rows.forEach((r, i) => {
      expect(Number(r.seq)).toBe(i + 1)
      if (i > 0) expect(r.prev_hash).toBe(rows[i - 1]!.hash)
    })
    const result = await t.app.audit.verify()
    expect(result).toMatchObject({ ok: true, checked: before + 200, broken: null, head: { seq: before + 200 } })
  })

  it('an entry whose transaction rolls back takes no seq: the next one follows without a gap', async () => {
    const last = (await head()).seq
    await expect(
      t.app.audit.transaction(async (c) => {
        await t.app.audit.record(probe('abandoned'), c)
        throw new Error('the action failed')
      })
    ).rejects.toThrow('the action failed')
    expect((await t.app.audit.record(probe('kept'))).seq).toBe(last + 1)
    expect((await t.app.audit.verify()).ok).toBe(true)
  })

  it('refuses to append in a transaction whose snapshot may predate the lock (REPEATABLE READ), and appends nothing', async () => {
    const last = (await head()).seq
    await expect(
      t.app.audit.transaction(async (c) => {
        await c.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ')
        await t.app.audit.record(probe('stale-snapshot'), c)
      })
    ).rejects.toThrow('READ COMMITTED transactions only, not repeatable read')
    expect((await t.app.audit.record(probe('after-refusal'))).seq).toBe(last + 1)
  })

  it('stores the exact canonical text it hashed: keys sorted at every depth, numbers as JSON writes them', async () => {
    const e = await t.app.audit.record(probe('canonical', { b: 1.5, a: { z: 1e21, y: [3, 'é'] } }))
    const { rows } = await su.query<{ detail: string }>('SELECT detail FROM audit_log WHERE seq = $1', [e.seq])
    expect(rows[0]!.detail).toBe('{"a":{"y":[3,"é"],"z":1e+21},"b":1.5}')
    expect(e.detail).toEqual({ a: { y: [3, 'é'], z: 1e21 }, b: 1.5 })
    // What PostgreSQL's JSON refuses (a lone surrogate, NUL) becomes U+FFFD rather than failing the action.
    const odd = await t.app.audit.record(probe('unstorable', { comment: 'a\ud800b\u0000c\ud83d\udd25' }))
    expect(odd.detail).toEqual({ comment: 'a\ufffdb\ufffdc\ud83d\udd25' })
  })

  it('refuses UPDATE, DELETE and TRUNCATE while its triggers are on, even to a superuser', async () => {
    await expect(su.query(`UPDATE audit_log SET actor = 'x' WHERE seq = 1`)).rejects.toThrow(/append-only: UPDATE refused/)
    await expect(su.query('DELETE FROM audit_log WHERE seq = 1')).rejects.toThrow(/append-only: DELETE refused/)
    await expect(su.query('TRUNCATE audit_log')).rejects.toThrow(/append-only: TRUNCATE refused/)
  })
})

describe('what is recorded', () => {
  let unitId: string
  let jurisdictionId: string
  let operator: ApiCall
  let seq = 0

  beforeAll(async () => {
    unitId = await createUnitAt(t.api)
    jurisdictionId = (await t.api<{ jurisdictionId: string }>('GET', `/api/v1/units/${unitId}`)).body.jurisdictionId
    const password = 'operator-1-password'
    const r = await t.api('POST', '/api/v1/users', { username: 'operator-1', displayName: 'Console operator', password, role: 'operator', jurisdictionId })
    expect(r.status).toBe(201)
    const base = `http://127.0.0.1:${t.httpPort}`
    const { accessToken } = await loginAt(base, 'operator-1', password)
    operator = apiWithToken(base, () => accessToken)
  })

  const raise = async (cls: Alert['class'] = 'trouble'): Promise<Alert> =>
    (
      await t.app.alerts.raise({
        unitId,
        deviceId: '',
        point: '',
        ruleId: `audit-${++seq}`,
        class: cls,
        troubleType: cls === 'trouble' ? 'fault' : null,
        severity: cls === 'fire' ? 'critical' : 'minor',
        title: `${cls} alert`,
        detail: {},
        at: new Date(),
        ...(cls === 'fire' ? { verification: 'single_source' as const } : {})
      })
    ).alert
  const ofAlert = async (id: string) => (await entries(`subjectKind=alert&subjectId=${id}`)).items.reverse()

  it("an operator's acknowledge and resolve through the API are entries with the operator's name, comment and disposition", async () => {
    const alert = await raise()
    expect((await operator('POST', `/api/v1/alerts/${alert.id}/ack`, { comment: 'looking into it' })).status).toBe(200)
    expect((await operator('POST', `/api/v1/alerts/${alert.id}/resolve`, { disposition: 'device_fault', comment: 'detector replaced' })).status).toBe(200)
    const transitions = await t.app.alerts.transitions(alert.id)
    const got = await ofAlert(alert.id)
    expect(got.map((e) => [e.action, e.actor, e.jurisdictionId])).toEqual([
      ['alert.acknowledged', 'operator-1', jurisdictionId],
      ['alert.resolved', 'operator-1', jurisdictionId]
    ])
    expect(got[0]!.detail).toMatchObject({ unitId, from: 'open', to: 'acknowledged', comment: 'looking into it', transitionId: transitions[1]!.id })
    expect(got[1]!.detail).toMatchObject({ from: 'acknowledged', to: 'resolved', comment: 'detector replaced', data: { disposition: 'device_fault' } })
    expect(got[1]!.seq).toBeGreaterThan(got[0]!.seq)
  })

  it('confirming a fire records the acknowledgement it implies and the confirmation; isolation owners too', async () => {
    const fire = await raise('fire')
    expect((await operator('POST', `/api/v1/alerts/${fire.id}/confirm`, {})).status).toBe(200)
    expect((await ofAlert(fire.id)).map((e) => e.action)).toEqual(['alert.acknowledged', 'alert.confirmed'])
    const isolation = await raise('isolation')
    const expiresAt = new Date(Date.now() + 3_600_000).toISOString()
    expect((await operator('POST', `/api/v1/alerts/${isolation.id}/isolation`, { owner: 'maintenance contractor', expiresAt })).status).toBe(200)
    const [set] = await ofAlert(isolation.id)
    expect(set).toMatchObject({ action: 'alert.isolation_set', actor: 'operator-1', detail: { data: { owner: 'maintenance contractor', expiresAt } } })
  })

  it("a refused step records nothing, and the engine's own steps stay out of the trail", async () => {
    const alert = await raise()
    expect((await operator('POST', `/api/v1/alerts/${alert.id}/resolve`, { disposition: 'other' })).status).toBe(200)
    const before = (await head()).seq
    expect((await operator('POST', `/api/v1/alerts/${alert.id}/resolve`, { disposition: 'other' })).status).toBe(409)
    expect((await operator('POST', `/api/v1/alerts/${alert.id}/ack`, {})).status).toBe(409)
    expect((await head()).seq).toBe(before)
    const cleared = await raise()
    await t.app.alerts.clear({ unitId, deviceId: '', point: '', ruleId: cleared.ruleId }, new Date())
    expect(await ofAlert(cleared.id)).toEqual([])
  })

  it('an action whose entry cannot be written does not happen: they commit together', async () => {
    const alert = await raise()
    const before = (await head()).seq
    await su.query(`CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit refused'; END $$`)
    await su.query('CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION refuse_audit()')
    try {
      expect((await operator('POST', `/api/v1/alerts/${alert.id}/ack`, {})).status).toBe(503)
      const unit = { id: 'unit-unrecorded', jurisdictionId, name: 'Unrecorded', address: '1 Road', category: 'general', contactName: 'x', contactPhone: '0571-0000000' }
      expect((await t.api('POST', '/api/v1/units', unit)).status).toBe(503)
    } finally {
      await su.query('DROP TRIGGER refuse_audit ON audit_log')
      await su.query('DROP FUNCTION refuse_audit()')
    }
    expect((await t.app.alerts.get(alert.id))!.status).toBe('open')
    expect((await t.app.alerts.transitions(alert.id)).map((x) => x.action)).toEqual(['opened'])
    expect(await t.app.registry.getUnit('unit-unrecorded')).toBeNull()
    expect((await head()).seq).toBe(before)
  })

  it('device test mode on and off', async () => {
    const device = await t.provision('sprinkler_pressure', unitId)
    expect((await operator('PUT', `/api/v1/devices/${device.id}/test-mode`, { minutes: 30 })).status).toBe(200)
    expect((await operator('DELETE', `/api/v1/devices/${device.id}/test-mode`)).status).toBe(200)
    const got = (await entries(`subjectKind=device&subjectId=${device.id}`)).items.reverse()
    expect(got.map((e) => [e.action, e.actor, e.jurisdictionId])).toEqual([
      ['device.created', 'root', jurisdictionId],
      ['device.test_mode_started', 'operator-1', jurisdictionId],
      ['device.test_mode_ended', 'operator-1', jurisdictionId]
    ])
    expect(typeof got[1]!.detail.until).toBe('string')
    expect(got[2]!.detail).toEqual({ until: null })
  })

  it('registry creations, users and API keys, never with a password, secret or key', async () => {
    const district = await t.api<{ id: string }>('POST', '/api/v1/jurisdictions', { name: 'Audited District', level: 'district', parentId: jurisdictionId })
    const unit = await createUnitAt(t.api)
    const device = await t.provision('sprinkler_pressure', unitId)
    const user = await t.api<{ id: string }>('POST', '/api/v1/users', { username: 'inspector-9', displayName: 'Inspector', password: 'first-password-9', role: 'inspector', jurisdictionId })
    expect((await t.api('PATCH', `/api/v1/users/${user.body.id}`, { password: 'second-password-9', role: 'viewer' })).status).toBe(200)
    const key = await t.api<{ key: string; apiKey: { id: string } }>('POST', '/api/v1/api-keys', { name: 'integration', role: 'viewer', jurisdictionId })
    expect((await t.api('DELETE', `/api/v1/api-keys/${key.body.apiKey.id}`)).status).toBe(204)
    expect((await t.api('DELETE', `/api/v1/api-keys/${key.body.apiKey.id}`)).status).toBe(204)

    const mine = (await entries('actor=root&limit=1000')).items
    const find = (action: string, subjectId: string) => mine.filter((e) => e.action === action && e.subjectId === subjectId)
    expect(find('jurisdiction.created', district.body.id)).toMatchObject([{ jurisdictionId: district.body.id, detail: { level: 'district', parentId: jurisdictionId } }])
    expect(find('unit.created', unit)).toHaveLength(1)
    expect(find('device.created', device.id)).toMatchObject([{ jurisdictionId, detail: { unitId, kind: 'sprinkler_pressure' } }])
    expect(find('user.created', user.body.id)).toMatchObject([{ jurisdictionId, detail: { username: 'inspector-9', role: 'inspector' } }])
    expect(find('user.changed', user.body.id)).toMatchObject([{ detail: { changed: ['role', 'password'], role: 'viewer' } }])
    expect(find('api_key.created', key.body.apiKey.id)).toMatchObject([{ jurisdictionId, detail: { name: 'integration', role: 'viewer' } }])
    // Revoking a revoked key changed nothing: one entry.
    expect(find('api_key.revoked', key.body.apiKey.id)).toHaveLength(1)
    const everything = JSON.stringify((await entries('limit=1000')).items)
    for (const secret of ['first-password-9', 'second-password-9', device.secret, key.body.key, 'password_hash', 'secret_hash']) {
      expect(everything).not.toContain(secret)
    }
  })

  it('the first administrator, made with the bootstrap token, is a system-wide entry by bootstrap', async () => {
    const [first] = (await entries('action=user.created&actor=bootstrap')).items
    expect(first).toMatchObject({ actor: 'bootstrap', subjectKind: 'user', jurisdictionId: null, detail: { username: 'root', role: 'admin' } })
  })
})

describe('tampering', () => {
  /** A stored entry in the middle of the chain. */
  const K = 150
  let last: number

  beforeAll(async () => {
    // Enough entries on their own (when run alone, with -t), whatever ran before.
    const have = (await t.app.audit.verify()).head?.seq ?? 0
    await Promise.all(Array.from({ length: Math.max(0, 200 - have) }, (_, i) => t.app.audit.record(probe(`filler-${i}`))))
    last = (await head()).seq
    // The attacker is a superuser: the append-only triggers are no obstacle. The chain is.
    await su.query('CREATE TEMP TABLE saved AS SELECT * FROM audit_log')
    await su.query('ALTER TABLE audit_log DISABLE TRIGGER USER')
  })
  afterAll(async () => {
    await su.query('ALTER TABLE audit_log ENABLE TRIGGER USER')
  })
  afterEach(async () => {
    // Put the trail back as it was, and prove it holds again (so each case starts from an intact chain).
    await su.query('DELETE FROM audit_log a WHERE NOT EXISTS (SELECT 1 FROM saved s WHERE s.seq = a.seq)')
    await su.query('INSERT INTO audit_log SELECT * FROM saved s WHERE NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.seq = s.seq)')
    await su.query(`UPDATE audit_log a SET time = s.time, actor = s.actor, action = s.action, subject_kind = s.subject_kind, subject_id = s.subject_id,
                    jurisdiction_id = s.jurisdiction_id, detail = s.detail, prev_hash = s.prev_hash, hash = s.hash FROM saved s WHERE a.seq = s.seq`)
    expect((await t.app.audit.verify()).ok).toBe(true)
  })

  // [what the attacker did, SQL ($1 stands for K, $2 for the head's seq), the entry named, why, also run the CLI]
  const CASES: [string, string, (head: number) => number, string, boolean][] = [
    ['moved the time by one microsecond', `UPDATE audit_log SET time = time + interval '1 microsecond' WHERE seq = $1`, () => K, 'hash_mismatch', false],
    ['changed the actor', `UPDATE audit_log SET actor = 'someone-else' WHERE seq = $1`, () => K, 'hash_mismatch', true],
    ['changed the action', `UPDATE audit_log SET action = 'test.nothing' WHERE seq = $1`, () => K, 'hash_mismatch', false],
    ['changed the subject kind', `UPDATE audit_log SET subject_kind = 'unit' WHERE seq = $1`, () => K, 'hash_mismatch', false],
    ['changed the subject id', `UPDATE audit_log SET subject_id = subject_id || '0' WHERE seq = $1`, () => K, 'hash_mismatch', false],
    ['set a jurisdiction', `UPDATE audit_log SET jurisdiction_id = 'elsewhere' WHERE seq = $1`, () => K, 'hash_mismatch', false],
    ['changed a value in the detail', `UPDATE audit_log SET detail = '{"i":-1}' WHERE seq = $1`, () => K, 'hash_mismatch', false],
    ['re-spaced the detail (the same JSON)', `UPDATE audit_log SET detail = ' ' || detail WHERE seq = $1`, () => K, 'hash_mismatch', false],
    ['replaced the hash', `UPDATE audit_log SET hash = repeat('a', 64) WHERE seq = $1`, () => K, 'hash_mismatch', true],
    ['replaced the link to the previous entry', `UPDATE audit_log SET prev_hash = repeat('b', 64) WHERE seq = $1`, () => K, 'broken_link', false],
    ['renumbered the entry', 'UPDATE audit_log SET seq = seq + 100000 WHERE seq = $1', () => K, 'gap', false],
    ['deleted the entry', 'DELETE FROM audit_log WHERE seq = $1', () => K, 'gap', true],
    [
      'inserted a copy of an entry after the head',
      `INSERT INTO audit_log SELECT $2 + 1, time, actor, action, subject_kind, subject_id, jurisdiction_id, detail, prev_hash, hash FROM audit_log WHERE seq = $1`,
      (h) => h + 1,
      'broken_link',
      true
    ],
    [
      'inserted an entry linked to the head with a made-up hash',
      `INSERT INTO audit_log SELECT $2 + 1, now(), 'someone-else', 'alert.resolved', 'alert', '1', NULL, '{}', hash, repeat('c', 64) FROM audit_log WHERE seq = $2`,
      (h) => h + 1,
      'hash_mismatch',
      false
    ]
  ]

  it.each(CASES)('the attacker %s: verify names the entry', async (_what, sql, named, reason, cli) => {
    await su.query(sql.replaceAll('$1', String(K)).replaceAll('$2', String(last)))
    const seq = named(last)
    const r = await verify()
    expect(r.status).toBe(200)
    expect(r.body.ok).toBe(false)
    expect(r.body.broken).toMatchObject({ seq, reason })
    expect(r.body.broken!.message).toContain(`entry ${seq}`)
    if (cli) {
      const run = await runAuditVerify(databaseUrl, ['--quiet'])
      expect(run.code, run.stdout + run.stderr).toBe(1)
      expect(run.stdout).toContain(`BROKEN at entry ${seq}: ${reason}`)
    }
  })

  it('a hole wider than a page of the walk is still named at its first missing entry', async () => {
    await su.query('DELETE FROM audit_log WHERE seq BETWEEN 100 AND 140')
    expect((await t.app.audit.verify({ batchSize: 10 })).broken).toMatchObject({ seq: 100, reason: 'gap', message: expect.stringContaining('entries 100–140 are missing') })
    const run = await runAuditVerify(databaseUrl, ['--batch', '10', '--quiet'])
    expect(run.code).toBe(1)
    expect(run.stdout).toContain('BROKEN at entry 100: gap')
  })

  it('the CLI exits 0 on an intact trail and prints the head to publish', async () => {
    const h = await head()
    const run = await runAuditVerify(databaseUrl)
    expect(run.code, run.stdout + run.stderr).toBe(0)
    expect(run.stdout).toContain(`OK: ${h.seq} entries hold`)
    expect(run.stdout).toContain(`head: ${h.seq}:${h.hash}`)
  })

  it('a trail rewritten with recomputed hashes holds as a chain, but not against the head published before', async () => {
    const anchor = await head()
    // Change entry K and recompute every hash from it to the head, exactly as the appender would.
    await su.query(`UPDATE audit_log SET actor = 'someone-else' WHERE seq = $1`, [K])
    const { rows } = await su.query<{ seq: string; time: string; actor: string; action: string; subject_kind: string; subject_id: string; jurisdiction_id: string | null; detail: string; prev_hash: string }>(
      `SELECT seq, ${TIME_TEXT('time')} AS time, actor, action, subject_kind, subject_id, jurisdiction_id, detail, prev_hash FROM audit_log WHERE seq >= $1 ORDER BY seq`,
      [K]
    )
    let prev = rows[0]!.prev_hash
    for (const r of rows) {
      const hash = chainHash(prev, { seq: Number(r.seq), time: r.time, actor: r.actor, action: r.action, subjectKind: r.subject_kind, subjectId: r.subject_id, jurisdictionId: r.jurisdiction_id, detail: r.detail })
      await su.query('UPDATE audit_log SET prev_hash = $2, hash = $3 WHERE seq = $1', [r.seq, prev, hash])
      prev = hash
    }
    expect((await verify()).body.ok).toBe(true)
    const anchored = await verify(`?anchorSeq=${anchor.seq}&anchorHash=${anchor.hash}`)
    expect(anchored.body.broken).toMatchObject({ seq: anchor.seq, reason: 'anchor_mismatch' })
    const run = await runAuditVerify(databaseUrl, ['--anchor', `${anchor.seq}:${anchor.hash}`])
    expect(run.code).toBe(1)
    expect(run.stdout).toContain(`BROKEN at entry ${anchor.seq}: anchor_mismatch`)
  })

  it('a trail cut back behind the published head fails against it', async () => {
    const anchor = await head()
    await su.query('DELETE FROM audit_log WHERE seq = $1', [anchor.seq])
    expect((await verify()).body.ok).toBe(true)
    expect((await verify(`?anchorSeq=${anchor.seq}&anchorHash=${anchor.hash}`)).body.broken).toMatchObject({ seq: anchor.seq, reason: 'anchor_mismatch' })
  })
})
