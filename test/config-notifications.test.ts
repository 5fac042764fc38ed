/** The notification settings of the configuration: the 119 forward and webhook delivery (docs/NOTIFICATIONS.md). */
import { describe, expect, it } from 'vitest'
import { loadConfig } from '../src/config/index.js'

const base = { FIREWATCH_ADMIN_TOKEN: 'a-long-enough-admin-token' }
const SECRET = 'a-119-signing-key-of-32-characters-or-more'

describe('notification configuration', () => {
  it('forwards nothing and delivers webhooks with the documented defaults when nothing is set', () => {
    const c = loadConfig(base)
    expect(c.forward119).toBeNull()
    expect(c.webhooks).toEqual({ timeoutMs: 5000, attempts: 12, backoffMs: 1000, concurrency: 50 })
  })

  it('takes the 119 endpoint with its key', () => {
    const c = loadConfig({ ...base, FORWARD_119_URL: 'https://119.example/alarms', FORWARD_119_SECRET: SECRET, FORWARD_119_TIMEOUT_MS: '800' })
    expect(c.forward119).toEqual({ url: 'https://119.example/alarms', secret: SECRET, timeoutMs: 800, attempts: 30 })
  })

  it.each([
    [{ FORWARD_119_URL: 'https://119.example/a' }, /FORWARD_119_SECRET is required/],
    [{ FORWARD_119_SECRET: SECRET }, /FORWARD_119_URL is required/],
    [{ FORWARD_119_URL: 'ftp://119.example/a', FORWARD_119_SECRET: SECRET }, /FORWARD_119_URL="ftp/],
    [{ FORWARD_119_URL: 'https://gw:pa55@119.example/a', FORWARD_119_SECRET: SECRET }, /^(?!.*pa55).*FORWARD_119_URL="\*\*\*" is invalid/s],
    [{ FORWARD_119_URL: 'https://119.example/a', FORWARD_119_SECRET: 'short' }, /FORWARD_119_SECRET="\*\*\*" is invalid/],
    // GB 50440's 3 s is the whole budget: one attempt may not take longer.
    [{ FORWARD_119_TIMEOUT_MS: '5000' }, /FORWARD_119_TIMEOUT_MS="5000" is invalid/],
    [{ FORWARD_119_ATTEMPTS: '0' }, /FORWARD_119_ATTEMPTS="0" is invalid/],
    [{ WEBHOOK_ATTEMPTS: '0' }, /WEBHOOK_ATTEMPTS="0" is invalid/],
    [{ WEBHOOK_CONCURRENCY: '0' }, /WEBHOOK_CONCURRENCY="0" is invalid/],
    [{ WEBHOOK_ATTEMPTS: 'many' }, /WEBHOOK_ATTEMPTS/],
    [{ WEBHOOK_TIMEOUT_MS: '10' }, /WEBHOOK_TIMEOUT_MS/],
    [{ WEBHOOK_BACKOFF_MS: '-1' }, /WEBHOOK_BACKOFF_MS/]
  ])('refuses %j naming the variable', (env, message) => {
    expect(() => loadConfig({ ...base, ...env })).toThrow(message)
  })

  it('never echoes the 119 key in an error', () => {
    expect(() => loadConfig({ ...base, FORWARD_119_URL: 'https://119.example/a', FORWARD_119_SECRET: 'tooshort-secret' })).not.toThrow(/tooshort/)
  })
})
