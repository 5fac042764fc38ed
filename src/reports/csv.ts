/**
 * The summary report as one CSV table in long form: `section,key,metric,value`, one figure a row, so every section
 * fits one header and a spreadsheet pivots it back. Quoting by csv-stringify (RFC 4180); an empty value is a figure
 * that does not exist (a mean over no alerts, a rate without resolved fire alerts).
 */
import { stringify } from 'csv-stringify/sync'
import type { Summary } from '../../schemas/reports.js'

export const CSV_COLUMNS = ['section', 'key', 'metric', 'value'] as const
type Value = string | number | null

export function summaryCsv(s: Summary): string {
  const rows: [string, string, string, Value][] = [
    ['period', s.jurisdictionId, 'from', s.from],
    ['period', s.jurisdictionId, 'to', s.to],
    ['period', s.jurisdictionId, 'generated_at', s.generatedAt],
    ...s.alertsByClass.map((r): [string, string, string, Value] => ['alerts_by_class', r.class, 'count', r.count]),
    ...s.alertsByDisposition.map((r): [string, string, string, Value] => ['alerts_by_disposition', r.disposition, 'count', r.count]),
    ...[{ unitId: 'overall', ...s.falseAlarms.overall }, ...s.falseAlarms.units].flatMap((r): [string, string, string, Value][] => [
      ['false_alarms', r.unitId, 'false_alarms', r.falseAlarms],
      ['false_alarms', r.unitId, 'resolved_fire', r.resolvedFire],
      ['false_alarms', r.unitId, 'rate', r.rate]
    ]),
    ...s.responseTimes.flatMap((r): [string, string, string, Value][] => [
      ['response_times', r.class, 'acknowledged', r.acknowledged],
      ['response_times', r.class, 'mean_seconds_to_acknowledge', r.meanSecondsToAcknowledge],
      ['response_times', r.class, 'resolved', r.resolved],
      ['response_times', r.class, 'mean_seconds_to_resolve', r.meanSecondsToResolve]
    ]),
    ...s.unitsByRisk.map((r): [string, string, string, Value] => ['units_by_risk', r.level, 'count', r.count]),
    ...s.cases.flatMap((r): [string, string, string, Value][] => [
      ['cases', r.severity, 'opened', r.opened],
      ['cases', r.severity, 'overdue', r.overdue],
      ['cases', r.severity, 'closed', r.closed]
    ])
  ]
  return stringify(rows, { header: true, columns: [...CSV_COLUMNS] })
}
