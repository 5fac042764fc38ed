/**
 * Loads the follow-up policy file (rules/followup/policy.yaml, or FOLLOWUP_FILE) into a typed, frozen policy. An
 * invalid file stops start-up with a message naming the file, the policy and the field, as rule files do.
 */
import { readFileSync } from 'node:fs'
import { parse } from 'yaml'
import { FollowUpFile, type AlertOpenTrigger, type PolicySpec, type RiskLevelTrigger } from '../../schemas/followup-policy.js'
import type { Alert, RiskLevel } from '../../schemas/alerts.js'
import { ajv, describeErrors } from '../validation.js'
import { FirewatchError } from '../errors.js'

export type CaseSeverity = PolicySpec['severity']

export interface Policy {
  id: string
  title: string
  titleZh: string | null
  severity: CaseSeverity
  deadlineMs: number
  alertOpen: (AlertOpenTrigger & { forMs: number }) | null
  riskLevel: RiskLevelTrigger | null
}

export interface FollowUpPolicy {
  source: string
  defaultDeadlineMs: number
  /** Enabled policies only. */
  policies: readonly Policy[]
  evidence: FollowUpFile['evidence']
  credit: FollowUpFile['credit']
}

const validate = ajv.compile(FollowUpFile)
const LEVEL_RANK: Record<RiskLevel, number> = { low: 0, medium: 1, high: 2, critical: 3 }

const fail = (source: string, message: string) => new FirewatchError('FW_ERR_FOLLOWUP_POLICY', `${source}: ${message}`)

/** Parse and check the policy text; `source` names it in errors. */
export function parseFollowUpPolicy(text: string, source: string): FollowUpPolicy {
  let doc: unknown
  try {
    doc = parse(text)
  } catch (err) {
    throw fail(source, `not valid YAML: ${(err as Error).message}`)
  }
  if (!validate(doc)) {
    const e = validate.errors?.[0]
    const m = /^\/policies\/(\d+)(.*)$/.exec(e?.instancePath ?? '')
    if (m) {
      const id = (doc as { policies?: { id?: unknown }[] }).policies?.[Number(m[1])]?.id
      const field = (m[2] ?? '').replace(/^\//, '').replace(/\//g, '.') || '(policy)'
      const detail = describeErrors(validate.errors).replace(e!.instancePath, '').trim()
      throw fail(source, `policy ${typeof id === 'string' ? id : `#${Number(m[1]) + 1}`}: ${field} ${detail}`)
    }
    throw fail(source, describeErrors(validate.errors).replace(/\//g, '.'))
  }
  const f = doc as FollowUpFile
  const seen = new Set<string>()
  const policies: Policy[] = []
  for (const p of f.policies) {
    if (seen.has(p.id)) throw fail(source, `policy ${p.id}: id is defined twice`)
    seen.add(p.id)
    const when = p.when as { alertOpen?: AlertOpenTrigger; riskLevel?: RiskLevelTrigger }
    if (when.alertOpen && !when.alertOpen.classes && !when.alertOpen.rules) {
      throw fail(source, `policy ${p.id}: when.alertOpen needs classes or rules (or both)`)
    }
    if (p.enabled === false) continue
    policies.push({
      id: p.id,
      title: p.title,
      titleZh: p.titleZh ?? null,
      severity: p.severity,
      deadlineMs: (p.deadlineS ?? f.defaults.deadlineS) * 1000,
      alertOpen: when.alertOpen ? { ...when.alertOpen, forMs: when.alertOpen.forS * 1000 } : null,
      riskLevel: when.riskLevel ?? null
    })
  }
  if (f.evidence.pressureMaxMpa <= f.evidence.pressureMinMpa) throw fail(source, 'evidence.pressureMaxMpa must be above pressureMinMpa')
  return Object.freeze({ source, defaultDeadlineMs: f.defaults.deadlineS * 1000, policies, evidence: f.evidence, credit: f.credit })
}

export function loadFollowUpPolicy(file: string): FollowUpPolicy {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new FirewatchError('FW_ERR_FOLLOWUP_POLICY', `cannot read the follow-up policy ${file}: ${(err as Error).message}`)
  }
  return parseFollowUpPolicy(text, file)
}

/** The alert-open policies an alert may trigger (class and rule; the unit's category is checked when the timer fires). */
export function alertPolicies(policy: FollowUpPolicy, alert: Pick<Alert, 'class' | 'ruleId'>): Policy[] {
  return policy.policies.filter((p) => {
    const t = p.alertOpen
    if (!t) return false
    return (!t.classes || t.classes.includes(alert.class)) && (!t.rules || t.rules.includes(alert.ruleId))
  })
}

/** The risk-level policies a level reaches. */
export function riskPolicies(policy: FollowUpPolicy, level: RiskLevel): Policy[] {
  return policy.policies.filter((p) => p.riskLevel && LEVEL_RANK[level] >= LEVEL_RANK[p.riskLevel.atLeast])
}
