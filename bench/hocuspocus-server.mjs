// Starts a stock Hocuspocus server for the load comparison: no extensions, so it
// keeps documents in memory only (as configured out of the box), and it accepts any
// token. bench/peers.sh copies this file next to the installed packages and runs it
// with PORT set; it listens on 127.0.0.1 only.
import { Server } from '@hocuspocus/server'

const port = Number.parseInt(process.env.PORT ?? '', 10)
if (!Number.isInteger(port) || port <= 0) {
  console.error('PORT must be set to the port to listen on')
  process.exit(2)
}

const server = new Server({ port, address: '127.0.0.1', quiet: true })
await server.listen()
console.log(`hocuspocus listening on 127.0.0.1:${port}`)
