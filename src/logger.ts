import { pino, type Logger } from 'pino'
import type { LogLevel } from './config/index.js'

export type { Logger }

/** Structured logs, object first. Secrets never reach the log. */
export function createLogger(level: LogLevel, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'firewatch' },
      redact: {
        paths: [
          'password',
          'secret',
          '*.password',
          '*.secret',
          'req.headers.authorization',
          'headers.authorization',
          'config.adminToken',
          'config.influxToken',
          'config.databaseUrl',
          'config.mqttTls'
        ],
        censor: '[redacted]'
      }
    },
    destination
  )
}
