/**
 * GB/T 26875.3-2011 over TCP: UITDs (用户信息传输装置) connect, identified by their source address; what they send
 * goes through normalize → ingest log like an MQTT message, and is confirmed only once stored. See README.md and
 * docs/PROTOCOL.md.
 */
export { startGb26875Gateway, type Gb26875Gateway, type Gb26875GatewayOptions } from './gateway.js'
export { Command, FrameDecoder, FrameError, encodeFrame, replyTo, timeAt, epochOf, type Frame, type FrameTime } from './frame.js'
export { DataType, decodeAppData, encodeAppData, type AppData } from './app-data.js'
export { ANALOG_METRICS, translate } from './to-ingest.js'
