// Read one SSE stream with the npm `eventsource` package (a WHATWG EventSource for Node) and print
// one JSON line per dispatched event: {"type", "data", "lastEventId"}. Used by test_clients.py.
//
//   node node_reader.mjs URL [--until TYPE] [--last-event-id ID] [--timeout SECONDS]
//
// Without --until: close on the first `error` after at least one event (a finished stream makes
// EventSource fire `error` and schedule a reconnect; closing there stops it), exit 0.
// With --until TYPE: keep reconnecting (the client's own reconnect, sending Last-Event-ID) until
// an event of TYPE arrives, then close and exit 0.
// --last-event-id ID: send `Last-Event-ID: ID` on the first request too (through the package's
// documented `fetch` override; the EventSource API itself has no way to set it).
// Exit 1 after too many errors, 2 on timeout (details on stderr).

import {EventSource} from 'eventsource'

const TYPES = ['message', 'update', 'notification', 'resumed']
const MAX_ERRORS = 5

const args = process.argv.slice(2)
const url = args.shift()
let until = null
let initialLastEventId = null
let timeoutSeconds = 15
while (args.length) {
  const flag = args.shift()
  if (flag === '--until') until = args.shift()
  else if (flag === '--last-event-id') initialLastEventId = args.shift()
  else if (flag === '--timeout') timeoutSeconds = Number(args.shift())
  else {
    process.stderr.write(`node_reader: unknown argument ${flag}\n`)
    process.exit(64)
  }
}
if (!url) {
  process.stderr.write('usage: node node_reader.mjs URL [--until TYPE] [--last-event-id ID]\n')
  process.exit(64)
}

const options = {}
if (initialLastEventId !== null) {
  options.fetch = (input, init) => {
    const headers = {...init.headers}
    // The client's own value (set after it has seen an `id:`) wins on reconnects.
    if (!Object.keys(headers).some((name) => name.toLowerCase() === 'last-event-id')) {
      headers['Last-Event-ID'] = initialLastEventId
    }
    return fetch(input, {...init, headers})
  }
}

const es = new EventSource(url, options)
let received = 0
let errors = 0

const timer = setTimeout(() => {
  process.stderr.write(`node_reader: timeout after ${timeoutSeconds}s (${received} events, ${errors} errors)\n`)
  es.close()
  process.exit(2)
}, timeoutSeconds * 1000)

function finish(code) {
  es.close()
  clearTimeout(timer)
  process.exitCode = code
}

for (const type of TYPES) {
  es.addEventListener(type, (event) => {
    received += 1
    process.stdout.write(
      JSON.stringify({type: event.type, data: event.data, lastEventId: event.lastEventId}) + '\n',
    )
    if (until !== null && event.type === until) finish(0)
  })
}

es.addEventListener('error', (event) => {
  errors += 1
  if (until === null && received > 0) {
    finish(0) // the server ended the stream: do not reconnect
  } else if (errors >= MAX_ERRORS || es.readyState === es.CLOSED) {
    process.stderr.write(
      `node_reader: giving up after ${errors} error(s): ${event.message ?? ''} code=${event.code ?? ''}\n`,
    )
    finish(1)
  }
})
