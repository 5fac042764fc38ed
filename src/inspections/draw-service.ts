/**
 * Making, publishing and replaying inspection draws (双随机、一公开). The draw reads its inputs in one snapshot, runs the
 * pure sampler (sampler.ts) and stores inputs and result in one transaction with its audit record. Credit standings come from the
 * follow-up module's `creditStanding` (one rule for every reader).
 */
import { randomBytes } from 'node:crypto'
import type { PoolClient } from 'pg'
import { withTransaction, type Pool } from '../store/postgres.js'
import type { Logger } from '../logger.js'
import { FirewatchError } from '../errors.js'
import type { Draw, DrawCandidate, DrawCreate, DrawReplay, PublicDraw } from '../../schemas/inspections.js'
import { ALGORITHM, drawTargets, generatorFromSeed, runDraw } from './sampler.js'
import { WEIGHT_TABLE, weightOf, type WeightTable } from './weights.js'
import { creditStanding } from '../followup/credit.js'
import type { AuditLog } from '../audit/audit-log.js'
import { DrawRepository } from './draw-repository.js'

export interface DrawDeps {
  pool: Pool
  log: Logger
  /** The draw and its publication are recorded here, in their own transaction. */
  audit: AuditLog
}

export class DrawService {
  readonly repo: DrawRepository

  constructor(private readonly deps: DrawDeps) {
    this.repo = new DrawRepository(deps.pool)
  }

  /** Draw now. The jurisdiction must exist (the route checked the caller's scope). */
  async make(body: DrawCreate, actor: string): Promise<Draw> {
    const seed = body.seed ?? randomBytes(16).toString('hex')
    // One snapshot for candidates, credit and inspectors: a unit or inspector added meanwhile is wholly in or out.
    const { candidates, targets } = await this.snapshot(async (client) => {
      const units = await this.repo.candidates(client, body.jurisdictionId)
      if (units.length === 0) {
        throw new FirewatchError('FW_ERR_VALIDATION', `jurisdiction ${body.jurisdictionId} has no units to draw from`, { statusCode: 400, field: 'jurisdictionId' })
      }
      const credit = await creditStanding(client, units.map((u) => u.unitId))
      const candidates: DrawCandidate[] = units.map(({ unitId, level }) => {
        const c = credit.get(unitId)
        return { unitId, riskLevel: level, dishonest: c?.dishonest ?? false, activeEntries: c?.activeEntries ?? 0, weight: weightOf(level, c) }
      })
      const input = { seed, candidates, targets: body.targets, inspectorsPerTarget: body.inspectorsPerTarget }
      // The targets first, to know whose inspectors to read; runDraw then does the whole draw, as a replay does.
      const first = drawTargets(generatorFromSeed(seed), candidates, body.targets).map((t) => t.unitId)
      const eligible = await this.repo.eligibleInspectors(client, first)
      const targets = runDraw(input, eligible).map((t, i) => ({
        rank: i + 1,
        unitId: t.unitId,
        key: t.key,
        inspectors: t.inspectors,
        eligibleInspectors: t.eligible,
        shortfall: t.shortfall
      }))
      return { candidates, targets }
    })
    // The audit trail's append reads its head after taking its lock, which needs READ COMMITTED: the stored draw and
    // its entry commit together in a transaction of their own, after the snapshot that read the inputs.
    const id = await this.deps.audit.transaction(async (client) => {
      const drawId = await this.repo.insert(client, {
        jurisdictionId: body.jurisdictionId,
        seed,
        seedGenerated: body.seed === undefined,
        algorithm: ALGORITHM,
        targetsRequested: body.targets,
        inspectorsPerTarget: body.inspectorsPerTarget,
        note: body.note ?? null,
        weights: WEIGHT_TABLE,
        candidates,
        targets,
        createdBy: actor
      })
      const shortfalls = targets.filter((t) => t.shortfall > 0).map((t) => t.unitId)
      await this.deps.audit.record(
        {
          actor,
          action: 'draw.made',
          subjectKind: 'inspection_draw',
          subjectId: drawId,
          jurisdictionId: body.jurisdictionId,
          detail: { seed, candidates: candidates.length, targets: targets.map((t) => t.unitId), shortfalls }
        },
        client
      )
      if (shortfalls.length) this.deps.log.warn({ drawId, shortfalls }, 'draw targets with too few eligible inspectors')
      return drawId
    })
    return (await this.repo.get(id))!
  }

  /** Run `fn` in a read-only REPEATABLE READ transaction: every read it makes sees one snapshot. */
  private snapshot<T>(fn: (client: PoolClient) => Promise<T>): Promise<T> {
    return withTransaction(this.deps.pool, fn, 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
  }

  /** Publish once; publishing again changes nothing. Null for a missing draw. */
  async publish(id: string, actor: string): Promise<Draw | null> {
    const draw = await this.repo.get(id)
    if (!draw) return null
    await this.deps.audit.transaction(async (client) => {
      if (!(await this.repo.publish(client, id, actor))) return
      await this.deps.audit.record({ actor, action: 'draw.published', subjectKind: 'inspection_draw', subjectId: id, jurisdictionId: draw.jurisdictionId }, client)
    })
    return this.repo.get(id)
  }

  /**
   * Run the stored draw again from its seed and stored lists (every candidate, however many) and compare; each stored
   * weight is also recomputed from the candidate's stored inputs and the draw's own weight table.
   */
  async replay(draw: Draw): Promise<DrawReplay> {
    const candidates = await this.repo.allCandidates(draw.id)
    const eligible = new Map(draw.targets.map((t) => [t.unitId, t.eligibleInspectors]))
    const again = runDraw({ seed: draw.seed, candidates, targets: draw.targetsRequested, inspectorsPerTarget: draw.inspectorsPerTarget }, eligible)
    const stored = draw.targets.map((t) => ({ unitId: t.unitId, inspectors: t.inspectors }))
    const replayed = again.map((t) => ({ unitId: t.unitId, inspectors: t.inspectors }))
    const weightsMismatched = candidates.filter((c) => weightOf(c.riskLevel, c, draw.weights as WeightTable) !== c.weight).map((c) => c.unitId)
    return { drawId: draw.id, matches: JSON.stringify(stored) === JSON.stringify(replayed) && weightsMismatched.length === 0, weightsMismatched, stored, replayed }
  }

  /** The published list (names instead of ids); null unless published. */
  async publicView(id: string): Promise<PublicDraw | null> {
    const draw = await this.repo.get(id)
    if (!draw?.publishedAt) return null
    // The whole list: the public must be able to re-run the draw from this one answer (docs/INSPECTIONS.md).
    const candidates = await this.repo.allCandidates(draw.id)
    const names = await this.repo.names(draw, candidates)
    const user = (u: string) => names.users.get(u) ?? u
    return {
      id: draw.id,
      jurisdictionId: draw.jurisdictionId,
      jurisdictionName: names.jurisdictionName,
      seed: draw.seed,
      algorithm: draw.algorithm,
      inspectorsPerTarget: draw.inspectorsPerTarget,
      publishedAt: draw.publishedAt,
      candidates: candidates.map((c) => ({ unitId: c.unitId, unitName: names.units.get(c.unitId)?.name ?? c.unitId, weight: c.weight })),
      targets: draw.targets.map((t) => ({
        rank: t.rank,
        unitId: t.unitId,
        unitName: names.units.get(t.unitId)?.name ?? t.unitId,
        address: names.units.get(t.unitId)?.address ?? '',
        inspectors: t.inspectors.map(user),
        eligibleInspectors: t.eligibleInspectors.map(user),
        shortfall: t.shortfall
      }))
    }
  }
}
