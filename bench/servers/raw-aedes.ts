/**
 * The baseline: a bare aedes 1.x broker on an ephemeral port of 127.0.0.1, with no authentication, no ACL, no
 * validation and no persistence beyond aedes' in-memory defaults. Run by bench/index.ts as a child process.
 */
import net from 'node:net'
import { once } from 'node:events'
import { Aedes } from 'aedes'
import { serveControl } from './control.js'

const aedes = await Aedes.createBroker()
const server = net.createServer((socket) => {
  // The same socket option Firewatch sets (src/broker/index.ts), so Nagle's algorithm does not tilt the comparison.
  socket.setNoDelay(true)
  aedes.handle(socket)
})
server.listen(0, '127.0.0.1')
await once(server, 'listening')

serveControl(
  { mqttPort: (server.address() as net.AddressInfo).port, httpPort: null },
  {
    async stop() {
      await new Promise<void>((resolve) => aedes.close(() => resolve()))
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
    stats: () => ({ connectedClients: aedes.connectedClients })
  }
)
