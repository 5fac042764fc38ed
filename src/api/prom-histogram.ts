/**
 * A Prometheus histogram whose counts are kept elsewhere (a worker thread's {@link LatencyHistogram}, added up by the
 * main thread): prom-client's own Histogram only counts what it observes, so this one publishes the counts as given.
 */
import type { Registry } from 'prom-client'
import { LATENCY_BUCKETS, emptyHistogram, type LatencyHistogram } from '../store/latency-histogram.js'

export function mirroredHistogram(registry: Registry, name: string, help: string): { set(h: LatencyHistogram): void } {
  let current = emptyHistogram()
  const metric = {
    name,
    help,
    type: 'histogram',
    aggregator: 'sum',
    get: () => {
      let cumulative = 0
      const buckets = [...LATENCY_BUCKETS.map(String), '+Inf'].map((le, i) => {
        cumulative += current.counts[i] ?? 0
        return { metricName: `${name}_bucket`, labels: { le }, value: cumulative }
      })
      return {
        name,
        help,
        type: 'histogram',
        aggregator: 'sum',
        values: [...buckets, { metricName: `${name}_sum`, labels: {}, value: current.sum }, { metricName: `${name}_count`, labels: {}, value: current.count }]
      }
    },
    reset: () => {
      current = emptyHistogram()
    }
  }
  registry.registerMetric(metric as unknown as Parameters<Registry['registerMetric']>[0])
  return {
    set(h) {
      current = h
    }
  }
}
