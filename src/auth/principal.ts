/**
 * Who is calling and what they may do. Every principal (a user with a token, an integration with an API key) has a
 * role and is bound to a jurisdiction subtree; `scope: null` means every jurisdiction (system administrators only).
 */
export const ROLES = ['admin', 'operator', 'inspector', 'viewer'] as const
export type Role = (typeof ROLES)[number]

export interface Principal {
  kind: 'user' | 'api_key' | 'bootstrap'
  id: string
  /** The name recorded as the actor of what they do. */
  name: string
  role: Role
  /** Jurisdiction subtree the principal is bound to; null: all. */
  scope: string | null
}

/** What a request wants to do. Reading is scoped for everyone; the rest also needs the role. */
export type Action =
  | 'read'
  | 'alert.act' // acknowledge, confirm, resolve, set isolation
  | 'device.test' // put a device in or out of test mode
  | 'registry.write' // jurisdictions, units, devices
  | 'users.manage' // users and API keys
  | 'webhooks.manage'
  | 'audit.read' // read the audit trail of one's subtree
  | 'audit.verify' // check the audit trail's hash chain
  | 'case.act' // open a case by hand, assign, verify, reject, close (enforcement)
  | 'case.submit' // record a unit's rectification report on a case

const ALLOWED: Record<Role, ReadonlySet<Action>> = {
  admin: new Set(['read', 'alert.act', 'device.test', 'registry.write', 'users.manage', 'webhooks.manage', 'audit.read', 'audit.verify', 'case.act', 'case.submit']),
  // Operators sit at the console: they handle alerts and may take a device into test mode for maintenance.
  // They may record a unit's rectification report on a case (units have no accounts of their own yet).
  operator: new Set(['read', 'alert.act', 'device.test', 'case.submit']),
  // Inspectors follow up cases (enforcement); they read everything in their jurisdiction but do not handle alarms.
  inspector: new Set(['read', 'audit.read', 'case.act', 'case.submit']),
  viewer: new Set(['read'])
}

export function can(p: Principal, action: Action): boolean {
  return ALLOWED[p.role].has(action)
}

/** Roles a principal may grant: its own and below (an operator cannot make an admin). */
const RANK: Record<Role, number> = { admin: 3, operator: 2, inspector: 1, viewer: 0 }
export function mayGrant(p: Principal, role: Role): boolean {
  return p.role === 'admin' && RANK[role] <= RANK[p.role]
}
