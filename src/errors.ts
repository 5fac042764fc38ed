/**
 * Every error Firewatch raises on purpose has a stable code from this list. Codes are never reused.
 * Rejections of device input are not exceptions but {@link RejectReason}s (see ingest/normalize.ts).
 */
export const ERROR_CODES = {
  FW_ERR_CONFIG: 'invalid configuration',
  FW_ERR_PROFILE: 'invalid device profile',
  FW_ERR_RULES: 'invalid rule file',
  FW_ERR_NOT_FOUND: 'not found',
  FW_ERR_CONFLICT: 'conflicts with an existing record',
  FW_ERR_VALIDATION: 'request failed validation',
  FW_ERR_UNAUTHORIZED: 'missing or wrong credentials',
  FW_ERR_FORBIDDEN: 'the role does not allow this',
  FW_ERR_RATE_LIMITED: 'too many attempts; wait and try again',
  FW_ERR_UNAVAILABLE: 'a backing service is unavailable',
  FW_ERR_MODBUS_TIMEOUT: 'a Modbus slave did not answer in time',
  FW_ERR_MODBUS_EXCEPTION: 'a Modbus slave answered with an exception',
  FW_ERR_MODBUS_OFFLINE: 'the connection to a Modbus gateway is down',
  FW_ERR_MODBUS_PROTOCOL: 'a Modbus gateway answered with a broken or mismatched frame',
  FW_ERR_FOLLOWUP_POLICY: 'invalid follow-up policy file',
  FW_ERR_CASE_STATE: 'the case is not in a state that allows this step'
} as const

export type ErrorCode = keyof typeof ERROR_CODES

export class FirewatchError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: { statusCode?: number; field?: string } = {}
  ) {
    super(message)
    this.name = 'FirewatchError'
  }
}
