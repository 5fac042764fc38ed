/**
 * `npm run audit:verify`: check the audit trail's hash chain in the database DATABASE_URL names (docs/AUDIT.md).
 *
 *   exit 0  the chain holds (prints the head: publish it, and pass it back with --anchor on later runs)
 *   exit 1  an entry does not hold: prints its seq and why (gap, sequence, broken_link, hash_mismatch, anchor_mismatch)
 *   exit 2  the check could not run (no database, no audit trail, a bad option)
 *
 * DATABASE_CONNECT_TIMEOUT_MS (as the server's, default 5 s) bounds connecting.
 *
 * It only reads, and never creates the database (unlike the server's start-up).
 */
import { Command, InvalidArgumentError } from 'commander'
import { pino } from 'pino'
import { databaseConnectTimeoutMs } from '../config/index.js'
import { openPool } from '../store/postgres.js'
import { verifyChain } from './verify.js'

const ANCHOR = /^([1-9][0-9]{0,15}):([0-9a-fA-F]{64})$/

function parseAnchor(v: string): { seq: number; hash: string } {
  const m = ANCHOR.exec(v)
  if (!m) throw new InvalidArgumentError('expected <seq>:<sha256 hex>, as printed by an earlier run')
  return { seq: Number(m[1]), hash: m[2]!.toLowerCase() }
}

async function main(argv: string[]): Promise<number> {
  const program = new Command('audit-verify')
    .description('Verify the hash chain of the Firewatch audit trail (reads DATABASE_URL).')
    .option('--anchor <seq:hash>', 'a head published earlier: the chain must still hold this hash at this seq', parseAnchor)
    .option('--batch <n>', 'entries read per query', (v) => {
      const n = Number(v)
      if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('a positive integer')
      return n
    }, 2000)
    .option('--quiet', 'no progress lines')
  program.parse(argv)
  const o = program.opts<{ anchor?: { seq: number; hash: string }; batch: number; quiet?: boolean }>()
  const url = process.env.DATABASE_URL
  if (!url) {
    process.stderr.write('audit-verify: DATABASE_URL is not set\n')
    return 2
  }

  let connectTimeoutMs: number
  try {
    connectTimeoutMs = databaseConnectTimeoutMs()
  } catch (err) {
    process.stderr.write(`audit-verify: ${(err as Error).message}\n`)
    return 2
  }
  // As the server's pools: a database host that drops packets fails the check after the connect timeout, not minutes;
  // an idle client's error is not logged (the query that needs it fails and says why).
  const pool = openPool(url, pino({ level: 'silent' }), { max: 1, connectTimeoutMs })
  try {
    const started = Date.now()
    let lastPrint = started
    const result = await verifyChain(pool, {
      batchSize: o.batch,
      ...(o.anchor ? { anchor: o.anchor } : {}),
      onProgress: (checked, total) => {
        // Long chains say where they are once a second; short ones finish before the first line.
        if (o.quiet || Date.now() - lastPrint < 1000 || checked === total) return
        lastPrint = Date.now()
        process.stderr.write(`checked ${checked} of ${total} entries (${Math.floor((100 * checked) / Math.max(total, 1))} %)\n`)
      }
    })
    const seconds = ((Date.now() - started) / 1000).toFixed(1)
    if (!result.ok && result.broken) {
      const b = result.broken
      process.stdout.write(`BROKEN at entry ${b.seq}: ${b.reason}: ${b.message}\n`)
      process.stdout.write(`${result.checked} entries before it hold (checked in ${seconds} s)\n`)
      return 1
    }
    if (!result.head) {
      process.stdout.write('OK: the audit trail is empty\n')
      return 0
    }
    process.stdout.write(`OK: ${result.checked} entries hold (checked in ${seconds} s)${o.anchor ? `; anchor ${o.anchor.seq} matches` : ''}\n`)
    process.stdout.write(`head: ${result.head.seq}:${result.head.hash} at ${result.head.time}\n`)
    return 0
  } catch (err) {
    const e = err as { code?: string; message?: string }
    const why = e.code === '42P01' ? 'this database has no audit trail (audit_log): is DATABASE_URL the Firewatch database?' : (e.message ?? String(err))
    process.stderr.write(`audit-verify: cannot check: ${why}\n`)
    return 2
  } finally {
    await pool.end().catch(() => undefined)
  }
}

process.exitCode = await main(process.argv)
