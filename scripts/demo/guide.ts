/** What the demo prints once everything runs: where to look, what is worth watching, what to try. */
import { CITY, DISTRICTS, INTERESTING, STREETS, UNITS } from '../demo-city.js'
import { MODBUS_DEVICES, MODBUS_GATEWAYS, modbusLeak } from '../demo-modbus.js'
import { DATABASE_URL, DEMO } from './clean-state.js'
import { bold, cyan, dim, green } from './output.js'
import type { Provisioned } from './provision.js'
import type { RunFolder } from './run-folder.js'

/** The Modbus side of the guide: null when the gateways did not start. */
export interface ModbusGuide {
  host: string
  ports: number[]
  controlFile: string
}

export function printGuide(p: {
  base: string
  token: string
  tokenFromEnv: boolean
  credentials: { username: string; password: string; apiKey: string }
  mqttPort: number
  gb26875Port: number
  host: string
  folder: RunFolder
  simulated: Provisioned['simulated']
  manual: Provisioned['manual']
  uitds: Provisioned['uitds']
  modbus: ModbusGuide | null
}): void {
  const host = p.host === '0.0.0.0' || p.host === '::' ? '127.0.0.1' : p.host
  const auth = '-H "Authorization: Bearer $FW_TOKEN"'
  const interesting = p.simulated.filter((d) => INTERESTING[d.id])
  const line = dim('─'.repeat(100))
  console.log(`\n${line}`)
  console.log(
    ` ${bold(green('Firewatch demo is running'))}: ${CITY.name}, ${DISTRICTS.length} districts, ${STREETS.length} streets, ${UNITS.length} units, ${p.simulated.length} simulated devices` +
      (p.modbus ? ` + ${MODBUS_DEVICES.length} over Modbus` : '') +
      ` + ${p.uitds.length} UITDs over GB/T 26875.3`
  )
  console.log(line)
  console.log(` ${bold('API')}          ${cyan(`${p.base}/api/v1`)}   (bearer: the API key below)`)
  console.log(` ${bold('OpenAPI')}      ${cyan(`${p.base}/docs`)}`)
  console.log(` ${bold('console')}      ${cyan(`${p.base}/console/`)}   ${dim('(web console, 中文/English: log in with the user below)')}`)
  console.log(` ${bold('health')}       ${p.base}/healthz   ${p.base}/readyz`)
  console.log(` ${bold('log in')}       ${p.credentials.username} / ${p.credentials.password}   ${dim('(POST /api/v1/auth/login; the administrator of the whole city)')}`)
  console.log(` ${bold('API key')}      ${p.credentials.apiKey}`)
  console.log(` ${bold('bootstrap')}    ${p.token}${p.tokenFromEnv ? dim('   (FIREWATCH_ADMIN_TOKEN from the environment)') : dim('   (FIREWATCH_ADMIN_TOKEN: only creates the first administrator)')}`)
  console.log(` ${bold('MQTT')}         mqtt://${host}:${p.mqttPort}`)
  console.log(
    ` ${bold('GB/T 26875.3')} ${host}:${p.gb26875Port}   ${p.uitds.length} UITDs (${p.uitds.map((u) => u.address).join(', ')})   ${dim('(GB26875_PORT; the address is their identity)')}`
  )
  console.log(
    `              ${dim(`the console shows them as "uitd (gb26875)", online while connected (${p.base}/console/#devices/${p.uitds[0]?.id ?? ''}); the API as protocol gb26875 with gb26875.address`)}`
  )
  if (p.modbus) {
    const mb = p.modbus
    for (const [i, g] of MODBUS_GATEWAYS.entries()) {
      const polls = [...new Set(g.devices.map((d) => d.pollIntervalMs / 1000))].join('/')
      console.log(
        `${i === 0 ? ` ${bold('Modbus TCP')}   ` : ' '.repeat(14)}${`${mb.host}:${mb.ports[i]}`.padEnd(17)} ${g.devices.length} unit ids, polled every ${polls} s   ${dim(g.name)}`
      )
    }
  }
  console.log(` ${bold('logs')}         server  ${p.folder.serverLog}`)
  console.log(`              devices ${p.folder.devicesLog}`)
  console.log(` ${bold('databases')}    PostgreSQL ${DEMO.database}, InfluxDB ${DEMO.influxDb} (port ${DEMO.influxPort}), Redis keys ${DEMO.redisPrefix}*`)
  console.log(`\n ${bold('Worth watching')}`)
  for (const d of interesting) {
    const unit = UNITS.find((u) => u.id === d.unitId)
    console.log(`   ${d.id.padEnd(26)} ${INTERESTING[d.id]!.what.padEnd(46)} ${dim(unit?.name ?? '')}`)
  }
  for (const u of p.uitds.filter((d) => d.what)) {
    const unit = UNITS.find((x) => x.id === u.unitId)
    console.log(`   ${u.id.padEnd(26)} ${u.what!.padEnd(46)} ${dim(unit?.name ?? '')}`)
  }
  const modbusWatch = p.modbus ? MODBUS_DEVICES.filter((d) => d.what) : []
  for (const d of modbusWatch) {
    const unit = UNITS.find((u) => u.id === d.unitId)
    console.log(`   ${d.id.padEnd(26)} ${d.what!.padEnd(46)} ${dim(unit?.name ?? '')}`)
  }
  const leak = interesting.find((d) => d.kind === 'sprinkler_pressure')?.id ?? p.simulated[0]!.id
  const fire = interesting.find((d) => INTERESTING[d.id]!.scenario === 'fire')?.id ?? p.simulated[0]!.id
  console.log(`\n ${bold('Try, in another terminal')}`)
  console.log(`   export FW=${p.base} FW_TOKEN=${p.credentials.apiKey}`)
  console.log(`   curl -s ${auth} "$FW/api/v1/devices/${leak}/readings?metric=pressure_mpa&limit=5"`)
  console.log(`   curl -s ${auth} "$FW/api/v1/devices/${leak}/readings?every=10s"`)
  console.log(`   curl -s ${auth} "$FW/api/v1/devices/${fire}/events"`)
  const uitdFire = p.uitds.find((u) => u.scenario === 'fire') ?? p.uitds[0]
  if (uitdFire) console.log(`   curl -s ${auth} "$FW/api/v1/devices/${uitdFire.id}/events"   ${dim('# a UITD over GB/T 26875.3: each event confirmed once stored')}`)
  console.log(`   curl -s ${auth} "$FW/api/v1/alerts?status=unresolved"   ${dim('# alerts the rules raised (docs/RULES.md)')}`)
  console.log(`   curl -s ${auth} "$FW/api/v1/alerts?deviceId=${fire}"`)
  console.log(`   curl -s ${auth} -X POST "$FW/api/v1/alerts/<id>/resolve" -H 'content-type: application/json' -d '{"disposition":"false_alarm"}'`)
  console.log(`   curl -s ${auth} "$FW/api/v1/units/hb-ktv/risk"`)
  console.log(`   curl -s ${auth} "$FW/api/v1/units?jurisdictionId=hz-sc-hubin"`)
  console.log(`   curl -s ${auth} "$FW/api/v1/devices?unitId=hb-ktv"`)
  console.log(`\n ${bold('Supervision')} ${dim('(cases, credit, inspection draws, reports, audit: docs/FOLLOWUP.md, docs/INSPECTIONS.md, docs/AUDIT.md)')}`)
  console.log(`   curl -s ${auth} -X POST "$FW/api/v1/cases" -H 'content-type: application/json' -d '{"unitId":"hb-ktv","severity":"major","title":"Blocked fire exit"}'`)
  console.log(`   curl -s ${auth} "$FW/api/v1/cases?status=open"   ${dim('# also opened by the policy file (rules/followup/policy.yaml)')}`)
  console.log(`   curl -s ${auth} "$FW/api/v1/credit?dishonest=true"`)
  console.log(`   curl -s ${auth} -X POST "$FW/api/v1/inspections/draws" -H 'content-type: application/json' -d '{"jurisdictionId":"hz","targets":3}'`)
  console.log(`   curl -s ${auth} "$FW/api/v1/reports/summary?jurisdictionId=hz&format=csv"`)
  console.log(`   DATABASE_URL=${DATABASE_URL} npm run audit:verify`)
  if (p.modbus) {
    const leakMb = modbusLeak()
    const quiet = MODBUS_DEVICES.find((d) => d.unitId === leakMb.unitId && d.scenario === 'normal') ?? MODBUS_DEVICES[0]!
    console.log(`   curl -s ${auth} "$FW/api/v1/devices/${leakMb.id}/readings?metric=pressure_mpa&limit=5"   ${dim('# polled over Modbus')}`)
    console.log(`   curl -s ${auth} "$FW/api/v1/devices?unitId=${leakMb.unitId}"`)
    console.log(
      `\n ${bold('Modbus faults')} ${dim('(switched at run time: append a line to the control file; the devices log answers)')}`
    )
    console.log(`   echo 'fault ${quiet.id} silent' >> ${p.modbus.controlFile}   ${dim('# fault event after two missed polls')}`)
    console.log(`   curl -s ${auth} "$FW/api/v1/devices/${quiet.id}/events"`)
    console.log(`   echo 'fault ${quiet.id} none' >> ${p.modbus.controlFile}     ${dim('# restore event at the next poll')}`)
    console.log(
      `   ${dim(`also: fault <device|all> drop | exception <code>; scenario <device> ${['normal', 'slow-leak', 'pump-start', 'burst', 'stuck'].join('|')} (tanks: filling|draining)`)}`
    )
  }
  console.log(`\n ${bold('InfluxDB')} ${dim('(the influx CLI is Debian\'s influxdb-client package)')}`)
  console.log(`   influx -port ${DEMO.influxPort} -database ${DEMO.influxDb} -execute 'SELECT * FROM readings LIMIT 5'`)
  console.log(
    `   curl -s -G ${DEMO.influxUrl}/query --data-urlencode db=${DEMO.influxDb} --data-urlencode "q=SELECT * FROM readings WHERE device_id = '${leak}' LIMIT 5"`
  )
  console.log(`\n ${bold('Publish as a device')} ${dim(`(mosquitto-clients; ${p.manual.id} is provisioned for you and no simulator uses it)`)}`)
  console.log(
    `   mosquitto_pub -h ${host} -p ${p.mqttPort} -q 1 -i ${p.manual.id} -u ${p.manual.id} -P ${p.manual.secret} \\\n` +
      `     -t v1/devices/${p.manual.id}/telemetry -m '{"values":{"level_m":3.2,"battery_pct":88,"temperature_c":14.5}}'`
  )
  console.log(`   curl -s ${auth} "$FW/api/v1/devices/${p.manual.id}/readings"`)
  console.log(line)
  console.log(` Ctrl-C stops everything.  ${dim(`Logs and run files: ${p.folder.dir}`)}\n`)
}
