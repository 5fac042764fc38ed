/**
 * The small city `npm run demo` provisions: Hangzhou (杭州市), three districts, six streets, twenty fire-safety units
 * and their devices. Names and addresses are made up but shaped like real ones; coordinates fall in the right streets.
 */

export type Category = 'high_risk' | 'key' | 'general'
export type DeviceKind = 'alarm_panel' | 'uitd' | 'smoke_detector' | 'sprinkler_pressure' | 'water_level'

export interface DemoJurisdiction {
  id: string
  parentId?: string
  name: string
  level: 'city' | 'district' | 'street'
}

export interface DemoUnit {
  id: string
  jurisdictionId: string
  name: string
  address: string
  category: Category
  latitude: number
  longitude: number
  contactName: string
  contactPhone: string
  /** What reports the panel's states: a panel publishing itself, or a user information transmission device. */
  panel: 'alarm_panel' | 'uitd'
  smokeDetectors: 1 | 2 | 3
  waterLevel: boolean
}

export interface DemoDevice {
  id: string
  unitId: string
  kind: DeviceKind
  name: string
  /** Simulator scenario; see simulators/. */
  scenario: string
}

export const CITY: DemoJurisdiction = { id: 'hz', name: '杭州市 Hangzhou', level: 'city' }

export const DISTRICTS: DemoJurisdiction[] = [
  { id: 'hz-sc', parentId: 'hz', name: '上城区 Shangcheng District', level: 'district' },
  { id: 'hz-xh', parentId: 'hz', name: '西湖区 Xihu District', level: 'district' },
  { id: 'hz-bj', parentId: 'hz', name: '滨江区 Binjiang District', level: 'district' }
]

export const STREETS: DemoJurisdiction[] = [
  { id: 'hz-sc-hubin', parentId: 'hz-sc', name: '湖滨街道 Hubin Subdistrict', level: 'street' },
  { id: 'hz-sc-qingbo', parentId: 'hz-sc', name: '清波街道 Qingbo Subdistrict', level: 'street' },
  { id: 'hz-xh-beishan', parentId: 'hz-xh', name: '北山街道 Beishan Subdistrict', level: 'street' },
  { id: 'hz-xh-xixi', parentId: 'hz-xh', name: '西溪街道 Xixi Subdistrict', level: 'street' },
  { id: 'hz-bj-xixing', parentId: 'hz-bj', name: '西兴街道 Xixing Subdistrict', level: 'street' },
  { id: 'hz-bj-changhe', parentId: 'hz-bj', name: '长河街道 Changhe Subdistrict', level: 'street' }
]

type UnitSeed = Omit<DemoUnit, 'contactPhone'>

const UNIT_SEEDS: UnitSeed[] = [
  // 上城区 · 湖滨街道
  { id: 'hb-mall', jurisdictionId: 'hz-sc-hubin', name: '湖滨步行街商业综合体 Hubin Pedestrian Street Mall', address: '杭州市上城区延安路258号', category: 'high_risk', latitude: 30.2587, longitude: 120.166, contactName: '消防安全管理人 Fire safety manager', panel: 'uitd', smokeDetectors: 3, waterLevel: true },
  { id: 'hb-ktv', jurisdictionId: 'hz-sc-hubin', name: '西湖天地KTV Xihu Tiandi KTV', address: '杭州市上城区南山路147号', category: 'high_risk', latitude: 30.2528, longitude: 120.1632, contactName: '消防安全管理人 Fire safety manager', panel: 'alarm_panel', smokeDetectors: 2, waterLevel: false },
  { id: 'hb-hotel', jurisdictionId: 'hz-sc-hubin', name: '湖滨国际大酒店 Hubin International Hotel', address: '杭州市上城区学士路10号', category: 'high_risk', latitude: 30.256, longitude: 120.164, contactName: '消防安全管理人 Fire safety manager', panel: 'alarm_panel', smokeDetectors: 1, waterLevel: false },
  { id: 'hb-youth', jurisdictionId: 'hz-sc-hubin', name: '上城区青少年活动中心 Shangcheng Youth Activity Center', address: '杭州市上城区东坡路55号', category: 'key', latitude: 30.257, longitude: 120.168, contactName: '消防安全管理人 Fire safety manager', panel: 'alarm_panel', smokeDetectors: 1, waterLevel: false },
  // 上城区 · 清波街道
  { id: 'qb-hefang', jurisdictionId: 'hz-sc-qingbo', name: '河坊街古建筑群 Hefang Street Historic Buildings', address: '杭州市上城区河坊街85号', category: 'key', latitude: 30.244, longitude: 120.169, contactName: '消防安全管理人 Fire safety manager', panel: 'alarm_panel', smokeDetectors: 1, waterLevel: false },
  { id: 'qb-care', jurisdictionId: 'hz-sc-qingbo', name: '清波颐养院 Qingbo Elderly Care Home', address: '杭州市上城区清波街36号', category: 'key', latitude: 30.2425, longitude: 120.1635, contactName: '消防安全管理人 Fire safety manager', panel: 'alarm_panel', smokeDetectors: 2, waterLevel: false },
  { id: 'qb-food', jurisdictionId: 'hz-sc-qingbo', name: '南宋御街餐饮楼 Imperial Street Restaurant', address: '杭州市上城区中山中路112号', category: 'general', latitude: 30.246, longitude: 120.171, contactName: '消防安全管理人 Fire safety manager', panel: 'alarm_panel', smokeDetectors: 1, waterLevel: false },
  // 西湖区 · 北山街道
  { id: 'bs-hospital', jurisdictionId: 'hz-xh-beishan', name: '西湖区第三人民医院 Xihu No. 3 People\'s Hospital', address: '杭州市西湖区保俶路40号', category: 'key', latitude: 30.268, longitude: 120.151, contactName: '消防安全管理人 Fire safety manager', panel: 'uitd', smokeDetectors: 1, waterLevel: true },
  { id: 'bs-museum', jurisdictionId: 'hz-xh-beishan', name: '北山路近代建筑博物馆 Beishan Road Heritage Museum', address: '杭州市西湖区北山路32号', category: 'key', latitude: 30.2615, longitude: 120.148, contactName: '消防安全管理人 Fire safety manager', panel: 'alarm_panel', smokeDetectors: 1, waterLevel: false },
  { id: 'bs-office', jurisdictionId: 'hz-xh-beishan', name: '黄龙商务大厦 Huanglong Office Tower', address: '杭州市西湖区曙光路120号', category: 'general', latitude: 30.271, longitude: 120.142, contactName: '消防安全管理人 Fire safety manager', panel: 'alarm_panel', smokeDetectors: 1, waterLevel: false },
  // 西湖区 · 西溪街道
  { id: 'xx-digital', jurisdictionId: 'hz-xh-xixi', name: '文三数码城 Wensan Digital Plaza', address: '杭州市西湖区文三路259号', category: 'high_risk', latitude: 30.278, longitude: 120.135, contactName: '消防安全管理人 Fire safety manager', panel: 'alarm_panel', smokeDetectors: 1, waterLevel: false },
  { id: 'xx-tower', jurisdictionId: 'hz-xh-xixi', name: '西溪高层公寓 Xixi High-rise Apartments', address: '杭州市西湖区学院路77号', category: 'key', latitude: 30.279, longitude: 120.13, contactName: '消防安全管理人 Fire safety manager', panel: 'alarm_panel', smokeDetectors: 1, waterLevel: false },
  { id: 'xx-school', jurisdictionId: 'hz-xh-xixi', name: '教工路小学 Jiaogong Road Primary School', address: '杭州市西湖区教工路18号', category: 'key', latitude: 30.276, longitude: 120.142, contactName: '消防安全管理人 Fire safety manager', panel: 'uitd', smokeDetectors: 1, waterLevel: false },
  { id: 'xx-store', jurisdictionId: 'hz-xh-xixi', name: '古墩路便利店 Gudun Road Convenience Store', address: '杭州市西湖区古墩路99号', category: 'general', latitude: 30.282, longitude: 120.11, contactName: '消防安全管理人 Fire safety manager', panel: 'alarm_panel', smokeDetectors: 1, waterLevel: false },
  // 滨江区 · 西兴街道
  { id: 'xg-datacenter', jurisdictionId: 'hz-bj-xixing', name: '江南大道数据中心 Jiangnan Avenue Data Center', address: '杭州市滨江区江南大道3850号', category: 'key', latitude: 30.208, longitude: 120.21, contactName: '消防安全管理人 Fire safety manager', panel: 'uitd', smokeDetectors: 1, waterLevel: false },
  { id: 'xg-mall', jurisdictionId: 'hz-bj-xixing', name: '星光购物中心 Starlight Shopping Center', address: '杭州市滨江区江南大道228号', category: 'high_risk', latitude: 30.206, longitude: 120.212, contactName: '消防安全管理人 Fire safety manager', panel: 'uitd', smokeDetectors: 1, waterLevel: true },
  { id: 'xg-chem', jurisdictionId: 'hz-bj-xixing', name: '滨安路化工品仓库 Bin\'an Road Chemical Warehouse', address: '杭州市滨江区滨安路1180号', category: 'high_risk', latitude: 30.2, longitude: 120.22, contactName: '消防安全管理人 Fire safety manager', panel: 'alarm_panel', smokeDetectors: 1, waterLevel: false },
  // 滨江区 · 长河街道
  { id: 'ch-factory', jurisdictionId: 'hz-bj-changhe', name: '长河电子厂 Changhe Electronics Factory', address: '杭州市滨江区滨康路568号', category: 'high_risk', latitude: 30.19, longitude: 120.195, contactName: '消防安全管理人 Fire safety manager', panel: 'alarm_panel', smokeDetectors: 1, waterLevel: false },
  { id: 'ch-school', jurisdictionId: 'hz-bj-changhe', name: '长河中学 Changhe Middle School', address: '杭州市滨江区长河路590号', category: 'key', latitude: 30.188, longitude: 120.19, contactName: '消防安全管理人 Fire safety manager', panel: 'alarm_panel', smokeDetectors: 1, waterLevel: false },
  { id: 'ch-office', jurisdictionId: 'hz-bj-changhe', name: '江陵路科技园办公楼 Jiangling Road Tech Park Office', address: '杭州市滨江区江陵路1760号', category: 'general', latitude: 30.21, longitude: 120.215, contactName: '消防安全管理人 Fire safety manager', panel: 'alarm_panel', smokeDetectors: 1, waterLevel: false }
]

export const UNITS: DemoUnit[] = UNIT_SEEDS.map((u, i) => ({ ...u, contactPhone: `+86 138 0571 ${String(1001 + i * 17).padStart(4, '0')}` }))

/** The few devices that do something worth watching; every other device runs its simulator's normal scenario. */
export const INTERESTING: Record<string, { scenario: string; what: string }> = {
  'hb-ktv-panel': { scenario: 'fire', what: 'fire alarm' },
  'xx-digital-pressure': { scenario: 'slow-leak', what: 'slow leak in the sprinkler network' },
  'ch-factory-panel': { scenario: 'fault', what: 'panel fault' },
  'qb-care-smoke-2': { scenario: 'low-battery', what: 'smoke detector battery running low' }
}

const NORMAL: Record<DeviceKind, string> = {
  alarm_panel: 'quiet',
  uitd: 'quiet',
  smoke_detector: 'normal',
  sprinkler_pressure: 'normal',
  water_level: 'normal'
}

const FLOORS = ['1F 大堂 lobby', '2F 走廊 corridor', '3F 东侧 east wing', 'B1 车库 garage']

export function devicesOf(unit: DemoUnit): DemoDevice[] {
  const short = unit.name.split(' ')[0]
  const list: Omit<DemoDevice, 'scenario'>[] = [
    unit.panel === 'uitd'
      ? { id: `${unit.id}-uitd`, unitId: unit.id, kind: 'uitd', name: `${short} 用户信息传输装置 UITD` }
      : { id: `${unit.id}-panel`, unitId: unit.id, kind: 'alarm_panel', name: `${short} 火灾报警控制器 fire-alarm panel` }
  ]
  for (let n = 1; n <= unit.smokeDetectors; n++) {
    list.push({ id: `${unit.id}-smoke-${n}`, unitId: unit.id, kind: 'smoke_detector', name: `${short} 感烟探测器 smoke detector ${FLOORS[(n - 1) % FLOORS.length]}` })
  }
  list.push({ id: `${unit.id}-pressure`, unitId: unit.id, kind: 'sprinkler_pressure', name: `${short} 喷淋末端压力 sprinkler pressure` })
  if (unit.waterLevel) {
    list.push({ id: `${unit.id}-level`, unitId: unit.id, kind: 'water_level', name: `${short} 消防水池液位 fire-water tank level` })
  }
  return list.map((d) => ({ ...d, scenario: INTERESTING[d.id]?.scenario ?? NORMAL[d.kind] }))
}

/**
 * One more device no simulator runs, so that a person can publish as it with mosquitto_pub without kicking a
 * simulated device off (a second connection with the same client id takes the session over).
 */
export const MANUAL_DEVICE = {
  id: 'hb-mall-manual-level',
  unitId: 'hb-mall',
  kind: 'water_level' as const,
  name: '湖滨步行街商业综合体 备用水箱液位 spare tank level (for your own mosquitto_pub)'
}
