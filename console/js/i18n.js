// Every string of the console, in Chinese (the default) and English. The choice is remembered in localStorage.
const DICT = {
  zh: {
    title: '消防远程监控中心', login: '登录', username: '用户名', password: '密码', logout: '退出',
    loginFailed: '登录失败：用户名或密码错误', loginLocked: '尝试过多，请稍后再试', lang: 'English',
    alerts: '实时告警', risk: '单位风险', live: '实时', offline: '连接中断', connecting: '连接中…',
    soundOn: '声音：开', soundOff: '已静音', fireBanner: '火警', openFires: '未确认火警',
    noAlerts: '当前没有未处理告警', time: '时间', unit: '单位', device: '设备', point: '点位', class: '类别',
    severity: '级别', status: '状态', title_: '内容', actions: '操作',
    ack: '确认收到', confirmFire: '确认火警', confirmedBy: '已确认为火警：', resolve: '处置…', cancel: '取消', comment: '备注（可选）', acknowledgedBy: '已确认：',
    dispositionPrompt: '选择处置结果：', actionFailed: '操作失败',
    real_fire: '真实火警', false_alarm: '误报', test: '测试', device_fault: '设备故障', other: '其他', restored: '已恢复',
    fire: '火警', supervisory: '监管', trouble: '故障', isolation: '屏蔽',
    open: '未确认', acknowledged: '已确认', resolved: '已处置',
    critical: '危急', major: '严重', minor: '一般', warning: '警告', info: '提示',
    low: '低', medium: '中', high: '高',
    score: '风险分', level: '风险等级', openAlerts: '未处理告警', offlineDevices: '离线设备', devices: '设备数', deviceList: '设备',
    category: '类别', high_risk: '火灾高危单位', key: '消防安全重点单位', general: '一般单位', notScored: '未评分',
    address: '地址', contact: '消防安全责任人', riskFactors: '风险因素', recentEvents: '最近事件', recentAlerts: '最近告警',
    online: '在线', offlineState: '离线', lastSeen: '最后上报', testMode: '测试模式', until: '至', never: '从未',
    kind: '类型', name: '名称', back: '返回', range: '时间范围', noData: '该时间范围内没有数据', type: '类型', text: '说明',
    forward119GaveUp: '119 自动转发失败，请立即电话报警 119',
    reset: '实时通道已重置，已重新加载', reconnecting: '实时通道中断，正在重连', none: '无', loading: '加载中…', more: '显示更多',
    sessionExpired: '会话已过期，请重新登录',
    factor_open_fire: '未处理火警', factor_open_supervisory: '未处理监管报警', factor_open_trouble: '未处理故障',
    factor_offline_devices: '离线设备', factor_active_isolations: '屏蔽中', factor_false_alarm_rate: '误报率',
    factor_pressure_margin: '喷淋管网压力', factor_category: '单位类别',
    role_admin: '管理员', role_operator: '值班员', role_inspector: '监督员', role_viewer: '查看'
  },
  en: {
    title: 'Fire Monitoring Center', login: 'Log in', username: 'Username', password: 'Password', logout: 'Log out',
    loginFailed: 'Login failed: wrong username or password', loginLocked: 'Too many attempts; try again later', lang: '中文',
    alerts: 'Live alerts', risk: 'Unit risk', live: 'Live', offline: 'Disconnected', connecting: 'Connecting…',
    soundOn: 'Sound: on', soundOff: 'Muted', fireBanner: 'FIRE', openFires: 'unacknowledged fire alarms',
    noAlerts: 'No unresolved alerts', time: 'Time', unit: 'Unit', device: 'Device', point: 'Point', class: 'Class',
    severity: 'Severity', status: 'Status', title_: 'Alert', actions: 'Actions',
    ack: 'Acknowledge', confirmFire: 'Confirm fire', confirmedBy: 'Confirmed as fire by ', resolve: 'Resolve…', cancel: 'Cancel', comment: 'Comment (optional)', acknowledgedBy: 'Acknowledged by ',
    dispositionPrompt: 'Disposition:', actionFailed: 'Action failed',
    real_fire: 'Real fire', false_alarm: 'False alarm', test: 'Test', device_fault: 'Device fault', other: 'Other', restored: 'Restored',
    fire: 'Fire', supervisory: 'Supervisory', trouble: 'Trouble', isolation: 'Isolation',
    open: 'Open', acknowledged: 'Acknowledged', resolved: 'Resolved',
    critical: 'Critical', major: 'Major', minor: 'Minor', warning: 'Warning', info: 'Info',
    low: 'Low', medium: 'Medium', high: 'High',
    score: 'Score', level: 'Level', openAlerts: 'Open alerts', offlineDevices: 'Offline devices', devices: 'Devices', deviceList: 'Devices',
    category: 'Category', high_risk: 'High-risk unit', key: 'Key unit', general: 'General unit', notScored: 'not scored',
    address: 'Address', contact: 'Fire-safety contact', riskFactors: 'Risk factors', recentEvents: 'Recent events', recentAlerts: 'Recent alerts',
    online: 'Online', offlineState: 'Offline', lastSeen: 'Last seen', testMode: 'Test mode', until: 'until', never: 'never',
    kind: 'Kind', name: 'Name', back: 'Back', range: 'Range', noData: 'No data in this range', type: 'Type', text: 'Text',
    forward119GaveUp: 'The 119 forward failed: phone 119 now',
    reset: 'Live channel was reset; reloaded', reconnecting: 'Live channel lost; reconnecting', none: 'none', loading: 'Loading…', more: 'Show more',
    sessionExpired: 'Session expired; please log in again',
    factor_open_fire: 'Open fire alerts', factor_open_supervisory: 'Open supervisory alerts', factor_open_trouble: 'Open troubles',
    factor_offline_devices: 'Offline devices', factor_active_isolations: 'Active isolations', factor_false_alarm_rate: 'False alarm rate',
    factor_pressure_margin: 'Sprinkler pressure', factor_category: 'Unit category',
    role_admin: 'administrator', role_operator: 'operator', role_inspector: 'inspector', role_viewer: 'viewer'
  }
}

const KEY = 'firewatch.lang'
let lang = localStorage.getItem(KEY) === 'en' ? 'en' : 'zh'
const listeners = new Set()

export const getLang = () => lang

/** The string for this key in the current language; an unknown key (e.g. a new disposition) shows as itself. */
export const t = (key) => DICT[lang][key] ?? DICT.zh[key] ?? String(key)

export function toggleLang() {
  lang = lang === 'zh' ? 'en' : 'zh'
  localStorage.setItem(KEY, lang)
  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en'
  for (const fn of listeners) fn()
}

/** Called after every language switch (views redraw). */
export const onLangChange = (fn) => listeners.add(fn)

export const formatTime = (iso) => (iso ? new Date(iso).toLocaleString(lang === 'zh' ? 'zh-CN' : 'en-GB', { hour12: false }) : t('never'))
