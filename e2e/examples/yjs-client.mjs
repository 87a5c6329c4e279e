#!/usr/bin/env node
// A stock Yjs client for Roundtable: connects to a conference's board with a
// participant's join token, prints the board whenever it changes, and adds one item
// as that participant.
//
//   node e2e/examples/yjs-client.mjs SERVER_URL CONFERENCE_ID TOKEN ["item text"] [--stay]
//
//   SERVER_URL     where Roundtable runs, e.g. http://127.0.0.1:8080
//   CONFERENCE_ID  the conference's id
//   TOKEN          the participant's join token (the part of the join link after '#')
//
// Without --stay it exits once the server has answered for the new item (stored, or
// refused with a reason); with --stay it keeps printing changes until Ctrl-C.
// Run `npm install` in e2e/ first. See docs/api.md.

import WebSocket from 'ws';
import * as Y from 'yjs';
import { WebsocketProvider, messageAuth, messageSync } from 'y-websocket';
import * as auth from 'y-protocols/auth';
import * as sync from 'y-protocols/sync';
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';

const args = process.argv.slice(2).filter((a) => a !== '--stay');
const stay = process.argv.includes('--stay');
const [serverUrl, conferenceId, token, text = 'Added by the example Yjs client.'] = args;
if (!serverUrl || !conferenceId || !token) {
  console.error('usage: yjs-client.mjs SERVER_URL CONFERENCE_ID TOKEN ["item text"] [--stay]');
  process.exit(2);
}

// Who am I? The same token works as a bearer token on the HTTP API.
const meResponse = await fetch(new URL('/api/me', serverUrl), {
  headers: { authorization: `Bearer ${token}` },
});
const me = await meResponse.json();
if (!meResponse.ok) {
  console.error(`GET /api/me: ${meResponse.status} ${me.error}`);
  process.exit(1);
}
console.log(`signed in as ${me.name} (${me.role})`);

// A browser's WebSocket cannot send headers; Node's `ws` can, so the token travels
// as `Authorization: Bearer <token>`.
class BearerWebSocket extends WebSocket {
  constructor(url, protocols) {
    super(url, protocols, { headers: { authorization: `Bearer ${token}` } });
  }
}

// Garbage collection off: the server refuses updates with collected content.
const doc = new Y.Doc({ gc: false });
const wsUrl = new URL('/api/conferences', serverUrl).href.replace(/^http/, 'ws');
const provider = new WebsocketProvider(wsUrl, `${conferenceId}/sync`, doc, {
  WebSocketPolyfill: BearerWebSocket,
  disableBc: true,
});

const board = doc.getMap('board');
const roster = doc.getMap('roster');

// Prints the board under its headings, in the order the board shows them.
function printBoard() {
  const items = [...board.entries()].map(([id, item]) => ({ id, ...item.toJSON() }));
  const order = (a, b) => compare(a.position, b.position) || compare(a.id, b.id);
  console.log(`board: ${items.length} item${items.length === 1 ? '' : 's'}`);
  for (const { key, title } of doc.getMap('meta').get('headings') ?? []) {
    const under = items.filter((item) => item.heading === key).sort(order);
    if (under.length > 0) console.log(`  ${title}`);
    for (const item of under) {
      const author = roster.get(item.author)?.name ?? item.author;
      console.log(`    - ${item.text} (added by ${author})`);
    }
  }
}
const compare = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

// The server refuses what the participant's role may not write with a y-protocols
// "permission denied" message carrying the reason.
let answered = () => {};
provider.messageHandlers[messageAuth] = (_encoder, decoder) => {
  auth.readAuthMessage(decoder, doc, (_doc, reason) => {
    console.log(`refused by the server: ${reason}`);
    console.log('(the refused change stays only in this copy: nobody else sees it)');
    answered('refused');
  });
};

// An item's `position` orders it under its heading: a fractional index, as hex bytes
// ending in 80 (see shared/src/order.rs). This is the index's "after" rule.
function positionAfter(last) {
  const bytes = (last ?? '').match(/../g)?.map((h) => parseInt(h, 16)) ?? [];
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] < 0x80) return hex(bytes.slice(0, i)) + '80';
    if (bytes[i] < 0xff) return hex([...bytes.slice(0, i), bytes[i] + 1]) + '80';
  }
  return '80';
}
const hex = (bytes) => bytes.map((b) => b.toString(16).padStart(2, '0')).join('');

provider.once('sync', () => {
  printBoard();
  board.observeDeep(printBoard);

  const heading = 'worries';
  const last = [...board.values()]
    .filter((item) => item.get('heading') === heading)
    .map((item) => item.get('position'))
    .sort()
    .at(-1);
  const before = Y.encodeStateVector(doc);
  // The item is created with all its entries, `author` (our own participant id)
  // included, in one transaction: the server refuses an item without its author.
  const item = new Y.Map([
    ['heading', heading],
    ['position', positionAfter(last)],
    ['text', new Y.Text(text)],
    ['author', me.id],
    ['children', new Y.Map()],
  ]);
  console.log(`adding an item under "${heading}"`);
  board.set(`item-${crypto.randomUUID()}`, item);
  confirm(before);
});

// Yjs has no acknowledgements. To learn that the server kept the item, ask it (with a
// SyncStep1) for everything it has that we did not have before adding it: its answer
// holds our item only if it was stored. A refusal arrives first, as an Auth message.
function confirm(before) {
  const ourClock = Y.decodeStateVector(before).get(doc.clientID) ?? 0;
  const originalSync = provider.messageHandlers[messageSync];
  provider.messageHandlers[messageSync] = (encoder, decoder, ...rest) => {
    const peek = decoding.clone(decoder);
    const type = decoding.readVarUint(peek);
    if (type === sync.messageYjsSyncStep2 || type === sync.messageYjsUpdate) {
      const update = decoding.readVarUint8Array(peek);
      const theirs = Y.decodeStateVector(Y.encodeStateVectorFromUpdate(update));
      if ((theirs.get(doc.clientID) ?? 0) > ourClock) answered('stored');
    }
    originalSync(encoder, decoder, ...rest);
  };
  // SyncStep1 with the state vector from before the item (what writeSyncStep1 writes).
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, messageSync);
  encoding.writeVarUint(encoder, sync.messageYjsSyncStep1);
  encoding.writeVarUint8Array(encoder, before);
  provider.ws.send(encoding.toUint8Array(encoder));
}

new Promise((resolve) => {
  answered = resolve;
}).then((outcome) => {
  if (outcome === 'stored') console.log('the server stored the item');
  if (!stay) {
    provider.destroy();
    doc.destroy();
    process.exitCode = outcome === 'stored' ? 0 : 1;
  }
});

// y-websocket reconnects by itself after a close, except after 4400-4499. The
// server closes with 4003 when the chair removes the participant: that is final too.
provider.on('connection-close', (event) => {
  if (!event) return;
  console.log(`connection closed: ${event.code} ${event.reason}`);
  if (event.code === 4003) {
    provider.destroy();
    doc.destroy();
    process.exitCode = 1;
  }
});
