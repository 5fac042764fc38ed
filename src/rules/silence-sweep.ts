/**
 * The silence (no-data) check of the periodic sweep: a device heard from neither by presence (PostgreSQL) nor by the
 * engine (`rules:heard`) for longer than a `deadman` rule allows (its own limit, or the profile's patrol period) gets
 * the rule's effects (evaluator.ts markSilent), on its device's queue like any other change of its state.
 */
import type { Redis } from 'ioredis'
import type { Pool } from '../store/postgres.js'
import type { ProfileMap } from '../ingest/profiles.js'
import type { RuleSet } from './rule-set.js'
import { markSilent, type DeviceState, type Effect } from './evaluator.js'
import type { AckBatch } from './ack-batch.js'
import type { DeviceContext } from './actions.js'
import type { DeviceQueues } from './device-queues.js'
import type { DeviceStates } from './device-states.js'

export interface SilenceSweepDeps {
  pool: Pool
  redis: Redis
  rules: RuleSet
  profiles: ProfileMap
  queues: DeviceQueues
  states: DeviceStates
  /** When each device was last heard: saved (heardKey) and not yet saved. */
  acks: AckBatch
  /** Act on a device's effects and save its state. */
  act: (ctx: DeviceContext, state: DeviceState, effects: Effect[]) => Promise<void>
}

/**
 * Devices quiet past their limit. Only candidates are read: devices PostgreSQL has not seen (presence) for the
 * shortest limit any rule or profile sets, of which those the engine has not heard from either (`rules:heard`).
 * Each is checked again, inside the state lock, against the time it was last heard.
 */
export async function sweepSilence(d: SilenceSweepDeps, now: number): Promise<void> {
  const minAfterS = d.rules.minDeadmanS([...d.profiles.values()].map((p) => p.patrolPeriodS))
  if (minAfterS === null) return
  const { rows } = await d.pool.query<{ id: string; unit_id: string; profile: string; seen: Date }>(
    'SELECT id, unit_id, profile, coalesce(last_seen_at, created_at) AS seen FROM devices WHERE coalesce(last_seen_at, created_at) < $1',
    [new Date(now - minAfterS * 1000)]
  )
  for (let i = 0; i < rows.length; i += 1000) {
    const page = rows.slice(i, i + 1000)
    const heard = (await d.redis.zmscore(d.acks.heardKey, ...page.map((dev) => dev.id))) as (string | null)[]
    for (const [j, dev] of page.entries()) {
      const profile = d.profiles.get(dev.profile)
      if (!profile) continue
      const last = Math.max(dev.seen.getTime(), Number(heard[j] ?? 0))
      for (const rule of d.rules.forDevice(profile.kind, dev.unit_id, dev.id)) {
        if (!rule.deadman) continue
        const afterMs = (rule.deadman.afterS ?? profile.patrolPeriodS) * 1000
        if (now - last <= afterMs) continue
        await d.queues.run(dev.id, async () => {
          // Heard while the sweep ran: not silent.
          const fresh = Math.max(Number((await d.redis.zscore(d.acks.heardKey, dev.id)) ?? 0), d.acks.heardUnflushed(dev.id))
          if (now - Math.max(last, fresh) <= afterMs) return
          await d.states.load(new Set([dev.id]))
          const state = d.states.get(dev.id)!
          const effects = markSilent(state, rule, Math.max(last, fresh), now)
          if (effects.length === 0) return
          await d.act({ deviceId: dev.id, unitId: dev.unit_id, profile: dev.profile }, state, effects)
        })
      }
    }
  }
}
