import { describe, expect, it } from 'vitest'
import { loadConfig } from '../src/config/index.js'

const base = { FIREWATCH_ADMIN_TOKEN: 'a-long-enough-admin-token' }

describe('configuration', () => {
  it('has defaults for everything but the admin token, and is frozen', () => {
    const c = loadConfig(base)
    expect(c).toMatchObject({ mqttPort: 1883, httpPort: 8080, influxDb: 'firewatch', redisPrefix: 'fw:', logLevel: 'info', mqttTls: null, databaseConnectTimeoutMs: 5000 })
    expect(Object.isFrozen(c)).toBe(true)
  })

  it('takes an empty variable (a blank line of .env.example) as unset', () => {
    const c = loadConfig({ ...base, HOST: '', DEVICES_DIR: '', INGEST_CONSUMER: '', REDIS_URL: '', INFLUX_DB: '', MQTT_PORT: '' })
    expect(c).toMatchObject({ host: '0.0.0.0', redisUrl: 'redis://127.0.0.1:6379', influxDb: 'firewatch', mqttPort: 1883 })
    expect(c.devicesDir).toMatch(/devices$/)
    expect(c.consumerName.length).toBeGreaterThan(0)
  })

  it.each([
    [{}, /FIREWATCH_ADMIN_TOKEN is required/],
    [{ FIREWATCH_ADMIN_TOKEN: 'short' }, /FIREWATCH_ADMIN_TOKEN/],
    [{ ...base, MQTT_PORT: '70000' }, /MQTT_PORT="70000" is invalid/],
    [{ ...base, HTTP_PORT: 'eighty' }, /HTTP_PORT/],
    [{ ...base, REDIS_URL: 'http://x' }, /REDIS_URL/],
    [{ ...base, DATABASE_URL: 'not a url' }, /DATABASE_URL/],
    [{ ...base, DATABASE_CONNECT_TIMEOUT_MS: '50' }, /DATABASE_CONNECT_TIMEOUT_MS="50" is invalid: expected milliseconds 100-60000/],
    [{ ...base, INFLUX_URL: 'ftp://x' }, /INFLUX_URL/],
    [{ ...base, INFLUX_DB: 'bad name' }, /INFLUX_DB/],
    [{ ...base, LOG_LEVEL: 'loud' }, /LOG_LEVEL="loud" is invalid/],
    [{ ...base, GB26875_PORT: '65536' }, /GB26875_PORT="65536" is invalid: expected a TCP port number/],
    [{ ...base, GB26875_PORT: 'on' }, /GB26875_PORT="on" is invalid/],
    [{ ...base, MODBUS_POLLING: 'maybe' }, /MODBUS_POLLING="maybe" is invalid: expected true or false/],
    [{ ...base, MQTT_TLS_CERT: '/nonexistent.pem' }, /MQTT_TLS_KEY is required/],
    [{ ...base, MQTT_TLS_CERT: '/nonexistent.pem', MQTT_TLS_KEY: '/nonexistent.key' }, /MQTT_TLS_CERT=.* cannot be read/]
  ])('refuses %j naming the variable', (env, message) => {
    expect(() => loadConfig(env)).toThrow(message)
  })

  it('opens the GB/T 26875.3 port only when it is set (0: any free port)', () => {
    expect(loadConfig(base).gb26875Port).toBeNull()
    expect(loadConfig({ ...base, GB26875_PORT: '' }).gb26875Port).toBeNull()
    expect(loadConfig({ ...base, GB26875_PORT: '0' }).gb26875Port).toBe(0)
    expect(loadConfig({ ...base, GB26875_PORT: '9002' }).gb26875Port).toBe(9002)
  })

  it('never echoes the admin token in an error', () => {
    expect(() => loadConfig({ FIREWATCH_ADMIN_TOKEN: 'secret1' })).toThrow(/\*\*\*/)
  })
})
