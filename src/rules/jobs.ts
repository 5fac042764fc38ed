/**
 * BullMQ carries the work that must survive a restart: duration timers, escalation, isolation expiry, the silence
 * sweep (a job scheduler) and notifications. Every job has an explicit id, so a timer scheduled twice (a replayed
 * log entry, two instances) exists once, and every handler re-checks the state it acts on, so a timer that was not
 * cancelled in time does nothing.
 *
 * Redis settings follow BullMQ's production guide: `maxmemory-policy noeviction` and AOF (checked at start by the
 * app), workers on connections with `maxRetriesPerRequest: null` so they wait out a Redis restart, producers on
 * connections that fail fast so the caller (the rule engine) retries its batch instead of hanging.
 */
import { Queue, Worker, type Job, type JobsOptions } from 'bullmq'
import { Redis } from 'ioredis'
import type { Logger } from '../logger.js'

export type JobHandler = (data: Record<string, unknown>, job: Job) => Promise<void>
/** Told of a job that failed for good: its last attempt failed, or BullMQ failed it (its stall limit). */
export type FailedHandler = (job: Job) => Promise<void>

export interface JobsConfig {
  redisUrl: string
  /** Key prefix of the queues, e.g. `fw:bull`. */
  prefix: string
  log: Logger
  /** How often the sweep job runs. */
  sweepEveryMs: number
  /**
   * Jobs of the webhooks queue run at once. Deliveries wait on receivers (up to WEBHOOK_TIMEOUT_MS each), so one
   * receiver that stops answering holds a slot per delivery: with few slots it delays every other webhook.
   * @defaultValue 50
   */
  webhookConcurrency?: number
}

/**
 * Queue names. Notifications have their own queue so a slow receiver never delays a timer; webhook deliveries and the
 * 119 forward have theirs so a slow webhook receiver never delays a confirmed fire alarm's forward.
 */
export const QUEUES = { timers: 'timers', notify: 'notify', webhooks: 'webhooks', forward119: 'forward119' } as const
export type QueueName = (typeof QUEUES)[keyof typeof QUEUES]

/**
 * The queues the rule engine's thread works. The 119 forward is worked by a thread of its own
 * (src/notifications/forward-thread.ts), so a busy engine never holds a confirmed fire alarm back.
 */
export const ENGINE_QUEUES: readonly QueueName[] = [QUEUES.timers, QUEUES.notify, QUEUES.webhooks]

/**
 * The forward's locks are short, so a forward whose thread died mid-attempt is taken up again within seconds (the lock
 * expires, a stall check finds it) instead of BullMQ's 30 s and more; and a forward is not dropped because its thread
 * died during it more than once (BullMQ's default fails a job at its second stall). GB 50440: 3 s.
 */
const FORWARD_LOCKS = { lockDuration: 5_000, stalledInterval: 2_000, maxStalledCount: 10 }

/**
 * Times a webhook delivery may stall (its thread dying mid-attempt: it is tried again) before BullMQ fails it, where its
 * default is once; failed so, it is dead-lettered like one out of attempts. The engine's thread dies with whatever
 * else it runs, so two deaths during one delivery's ~34 minutes are not rare enough to cost a dead letter; a delivery
 * that itself kills the thread must not take the rule engine down again and again. Locks stay at BullMQ's 30 s: the
 * engine's thread may be busy that long with an alarm storm, and a delivery has minutes, not the forward's 3 s.
 */
export const WEBHOOK_STALL_LIMIT = 5

/** How often a queue's failed set is read for jobs failed by a thread that died before its failed handler ran. */
export const FAILED_SWEEP_MS = 5_000

/**
 * Queues whose jobs must run rather than fail: timers (duration, escalation, isolation expiry, case deadlines) and
 * notification digests. Their handlers are retried without limit and re-check their state, so they fail for good only
 * by a way around the handler's retries: BullMQ's stall limit (the thread died during the job again and again), an
 * UnrecoverableError, a job BullMQ could not move on. Such a job is kept in the failed set and run again (revived) by
 * the sweep of the failed set (at the workers' start, then every FAILED_SWEEP_MS), with its stall count reset.
 */
export const REVIVED_QUEUES: readonly QueueName[] = [QUEUES.timers, QUEUES.notify]

/**
 * Times BullMQ may stall a timer or notification job (its thread dying mid-run: it is run again) before failing it,
 * where its default is once: two deaths of the engine's thread during one job are not rare enough to lose an escalation.
 */
export const REVIVED_STALL_LIMIT = 5

/**
 * Times a failed timer or notification job is revived before it is given up (an error log `job given up` with its
 * name, id, data and reason, and the `givenUp` counter) and taken out of the failed set: a job that kills its thread
 * each time it runs must not take the engine down for ever. (REVIVED_STALL_LIMIT + 1) × (REVIVALS + 1) runs at most.
 */
export const REVIVALS = 3

/** Counts of the revival sweep, in this thread since it started. */
export interface RevivalStats {
  /** Failed jobs run again. */
  revived: number
  /** Failed jobs out of revivals, given up. */
  givenUp: number
}

/** The job's hash field that counts its revivals; its stall count (`stc`) is reset with it, the job still failed. */
const REVIVE = `if redis.call('ZSCORE', KEYS[2], ARGV[1]) == false then return -1 end
redis.call('HDEL', KEYS[1], 'stc')
return redis.call('HINCRBY', KEYS[1], 'fwRevivals', 1)`

/**
 * A timer or a notification must not give up while PostgreSQL or Redis is away for a while: retried without limit,
 * backing off to one attempt every 30 s (the `capped` strategy below). Handlers check their state first, so a retry
 * after the fact does nothing; a job that can never succeed (a bug) shows in the failure log and /metrics.
 */
const DEFAULT_JOB: JobsOptions = {
  attempts: Number.MAX_SAFE_INTEGER,
  backoff: { type: 'capped' },
  removeOnComplete: true,
  removeOnFail: true
}
/** A timer or a notification that fails for good anyway stays in the failed set, for the revival sweep. */
const REVIVED_JOB: JobsOptions = { ...DEFAULT_JOB, removeOnFail: false }
const capped = (attemptsMade: number) => Math.min(500 * 2 ** Math.min(attemptsMade, 10), 30_000)
/** `fast` (the 119 forward, GB 50440's 3 s budget): 100 ms doubling to 2 s. */
const fast = (attemptsMade: number) => Math.min(100 * 2 ** Math.max(0, Math.min(attemptsMade - 1, 10)), 2_000)
const backoffStrategy = (attemptsMade: number, type?: string) => (type === 'fast' ? fast(attemptsMade) : capped(attemptsMade))

/** A job that gives up after `attempts`: `exponential` (BullMQ's, from `delayMs` doubling) or `fast` backoff. */
export interface BoundedJob {
  attempts: number
  backoff: { type: 'exponential'; delay: number } | { type: 'fast' }
  /**
   * Keep the job in the failed set when it fails for good, for its queue's failed handler to take out (see
   * {@link Jobs.onFailed}, {@link Jobs.failed}): the failure then outlives a thread that dies before it is handled.
   * @defaultValue false (removed at once)
   */
  keepFailed?: boolean
}

/** BullMQ refuses ':' in custom ids; points and device ids are free text, so encode every part. */
export const jobId = (...parts: (string | number)[]) => parts.map((p) => encodeURIComponent(String(p)).replace(/\./g, '%2E')).join('.')

export class Jobs {
  private readonly producer: Redis
  private readonly queues: Record<QueueName, Queue>
  private readonly handlers: Record<QueueName, Map<string, JobHandler>> = {
    timers: new Map(),
    notify: new Map(),
    webhooks: new Map(),
    forward119: new Map()
  }
  private readonly failedHandlers: Partial<Record<QueueName, FailedHandler>> = {}
  private readonly workers: Worker[] = []
  private readonly workerConnections: Redis[] = []
  readonly revivals: RevivalStats = { revived: 0, givenUp: 0 }
  private reviveTimer: NodeJS.Timeout | null = null
  private reviving = false

  constructor(private readonly cfg: JobsConfig) {
    this.producer = new Redis(cfg.redisUrl, { maxRetriesPerRequest: 1, lazyConnect: true })
    this.producer.on('error', (err) => cfg.log.warn({ err }, 'BullMQ producer connection error'))
    const queue = (name: QueueName) =>
      new Queue(name, { connection: this.producer, prefix: cfg.prefix, defaultJobOptions: REVIVED_QUEUES.includes(name) ? REVIVED_JOB : DEFAULT_JOB })
    this.queues = { timers: queue('timers'), notify: queue('notify'), webhooks: queue('webhooks'), forward119: queue('forward119') }
    for (const q of Object.values(this.queues)) q.on('error', (err) => cfg.log.warn({ err, queue: q.name }, 'BullMQ queue error'))
  }

  /** Register the handler of one job name; call before start(). */
  handle(queue: QueueName, name: string, fn: JobHandler): void {
    this.handlers[queue].set(name, fn)
  }

  /**
   * Be told, in this thread, of each job of this queue that one of its workers here fails for good (its attempts
   * exhausted, BullMQ's stall limit, any other error). A thread that dies before its handler ran takes that with it:
   * a queue that must not lose it enqueues with `keepFailed` and also reads {@link Jobs.failed} now and then.
   */
  onFailed(queue: QueueName, fn: FailedHandler): void {
    this.failedHandlers[queue] = fn
  }

  /** Connect; and run the jobs of these queues here (none: this thread only adds jobs). */
  async start(workers: readonly QueueName[] = []): Promise<void> {
    await this.producer.connect().catch((err: Error) => {
      if (!/already connect/i.test(err.message)) throw err
    })
    for (const name of workers) {
      const connection = new Redis(this.cfg.redisUrl, { maxRetriesPerRequest: null })
      connection.on('error', (err) => this.cfg.log.warn({ err }, 'BullMQ worker connection error'))
      this.workerConnections.push(connection)
      const worker = new Worker(
        name,
        async (job) => {
          const fn = this.handlers[name].get(job.name)
          if (!fn) throw new Error(`no handler for job ${job.name} on queue ${name}`)
          await fn(job.data as Record<string, unknown>, job)
        },
        {
          connection,
          prefix: this.cfg.prefix,
          concurrency: name === 'timers' ? 4 : name === 'webhooks' ? (this.cfg.webhookConcurrency ?? 50) : 8,
          autorun: true,
          settings: { backoffStrategy },
          ...(name === 'forward119' ? FORWARD_LOCKS : name === 'webhooks' ? { maxStalledCount: WEBHOOK_STALL_LIMIT } : { maxStalledCount: REVIVED_STALL_LIMIT })
        }
      )
      worker.on('failed', (job, err) => {
        this.cfg.log.warn({ err, queue: name, job: job?.name, jobId: job?.id, attempt: job?.attemptsMade }, 'job failed')
        // finishedOn is set only when the job failed for good, not when it waits for its next attempt.
        const fn = this.failedHandlers[name]
        if (fn && job?.finishedOn) fn(job).catch((e: unknown) => this.cfg.log.error({ err: e, queue: name, jobId: job.id }, 'failed job not handled'))
      })
      worker.on('error', (err) => this.cfg.log.warn({ err, queue: name }, 'BullMQ worker error'))
      this.workers.push(worker)
    }
    // Timers and notifications failed however, here or by a thread that died since: run again (at start, then every few seconds).
    const revived = workers.filter((q) => REVIVED_QUEUES.includes(q))
    if (revived.length > 0) {
      const sweep = () => void this.reviveFailed(revived)
      sweep()
      this.reviveTimer = setInterval(sweep, FAILED_SWEEP_MS)
      this.reviveTimer.unref()
    }
    // One sweep schedule however many instances start: the scheduler id is the key.
    if (workers.includes('timers')) await this.queues.timers.upsertJobScheduler('sweep', { every: this.cfg.sweepEveryMs }, { name: 'sweep', opts: { removeOnComplete: true, removeOnFail: 100 } })
  }

  /** A repeating job (a BullMQ job scheduler): one schedule however many instances ask for it, the name its id. */
  async every(queue: QueueName, name: string, everyMs: number): Promise<void> {
    await this.queues[queue].upsertJobScheduler(name, { every: everyMs }, { name, opts: { removeOnComplete: true, removeOnFail: 100 } })
  }

  /** Add a delayed job; a job with the same id already waiting is left as it is. */
  async schedule(queue: QueueName, name: string, id: string, delayMs: number, data: Record<string, unknown>): Promise<void> {
    await this.queues[queue].add(name, data, { jobId: id, delay: Math.max(0, Math.round(delayMs)) })
  }

  /** Add a job now that gives up after a bounded number of attempts; a job with the same id already there is left as it is. */
  async enqueue(queue: QueueName, name: string, id: string, data: Record<string, unknown>, opts: BoundedJob): Promise<void> {
    await this.queues[queue].add(name, data, { jobId: id, attempts: opts.attempts, backoff: opts.backoff, ...(opts.keepFailed ? { removeOnFail: false } : {}) })
  }

  /**
   * Add a job now, retried without limit like a timer, whose id is kept for `keepMs` after it completed: adding it
   * again meanwhile, from another thread or instance, adds nothing, so it runs once.
   */
  async once(queue: QueueName, name: string, id: string, data: Record<string, unknown>, keepMs: number): Promise<void> {
    await this.queues[queue].add(name, data, { jobId: id, removeOnComplete: { age: Math.ceil(keepMs / 1000) } })
  }

  /** Jobs of this queue kept in its failed set (`keepFailed`), newest first, at most `limit`. */
  async failed(queue: QueueName, limit = 100): Promise<Job[]> {
    return this.queues[queue].getFailed(0, limit - 1)
  }

  /**
   * Run again each job kept in these queues' failed sets (REVIVED_QUEUES): its revival counted on the job and its stall
   * count reset, then moved back to wait. Several sweeps (threads, instances) may see one job: it is revived once (only
   * a job still failed is counted, only one retry moves it), or, out of revivals, given up once (removed, then logged).
   */
  async reviveFailed(queues: readonly QueueName[] = REVIVED_QUEUES): Promise<void> {
    if (this.reviving) return
    this.reviving = true
    try {
      for (const name of queues) {
        const q = this.queues[name]
        for (const job of await q.getFailed(0, 99)) {
          if (!job?.id) continue
          const base = { queue: name, job: job.name, jobId: job.id, reason: job.failedReason, attemptsStarted: job.attemptsStarted }
          try {
            const n = Number(await this.producer.eval(REVIVE, 2, q.toKey(job.id), q.toKey('failed'), job.id))
            if (n < 0) continue
            if (n > REVIVALS) {
              await job.remove()
              this.revivals.givenUp++
              this.cfg.log.error({ ...base, revivals: n - 1, data: job.data }, 'job given up: failed again after every revival; what it was to do has not happened')
              continue
            }
            await job.retry('failed')
            this.revivals.revived++
            this.cfg.log.warn({ ...base, revival: n }, 'failed job revived: run again')
          } catch (err) {
            // Taken up by another sweep meanwhile (no longer failed), or Redis away: the next sweep sees it if it must.
            this.cfg.log.debug({ err, ...base }, 'failed job not revived')
          }
        }
      }
    } catch (err) {
      this.cfg.log.warn({ err }, 'failed jobs not read')
    } finally {
      this.reviving = false
    }
  }

  /** Remove a waiting or delayed job (best effort: its handler re-checks anyway). */
  async cancel(queue: QueueName, id: string): Promise<void> {
    try {
      await this.queues[queue].remove(id)
    } catch (err) {
      // A job that is running cannot be removed; its handler finds nothing to do.
      this.cfg.log.debug({ err, jobId: id }, 'job not removed')
    }
  }

  async counts(): Promise<Record<string, Record<string, number>>> {
    const out: Record<string, Record<string, number>> = {}
    for (const [name, q] of Object.entries(this.queues)) out[name] = await q.getJobCounts('waiting', 'delayed', 'active', 'failed')
    return out
  }

  async getJob(queue: QueueName, id: string): Promise<Job | undefined> {
    return this.queues[queue].getJob(id)
  }

  /** Let running jobs finish, then close every connection. */
  async close(): Promise<void> {
    if (this.reviveTimer) clearInterval(this.reviveTimer)
    await Promise.all(this.workers.map((w) => w.close()))
    await Promise.all(Object.values(this.queues).map((q) => q.close()))
    for (const c of this.workerConnections) c.disconnect()
    await this.producer.quit().catch(() => undefined)
  }
}
