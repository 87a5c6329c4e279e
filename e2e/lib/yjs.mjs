// Stock Yjs clients (y-websocket's WebsocketProvider over the `ws` package) connected
// to a conference, as any Yjs application would connect.

import WebSocket from 'ws';
import * as Y from 'yjs';
import { WebsocketProvider, messageAuth } from 'y-websocket';
import * as authProtocol from 'y-protocols/auth';

import { waitFor } from './wait.mjs';

/**
 * Connects to a conference's shared document. Authenticates with a participant's
 * join token (`bearer`) or a session cookie (`cookie`).
 *
 * Resolves once the first sync is done, to `{ doc, provider, refusals, close }`.
 * `refusals` collects the reasons of every y-protocols "permission denied" message
 * the server sends this client.
 */
export async function connect(
  server,
  conferenceId,
  { bearer, cookie, gc = false, timeoutMs = 5_000 } = {},
) {
  const headers = {};
  if (bearer) headers.authorization = `Bearer ${bearer}`;
  if (cookie) headers.cookie = cookie;
  // y-websocket opens sockets with `new WebSocketPolyfill(url, protocols)`; this
  // subclass adds the credentials, which a browser's WebSocket cannot send.
  class AuthenticatedWebSocket extends WebSocket {
    constructor(url, protocols) {
      super(url, protocols, { headers });
    }
  }
  // Garbage collection off, as Roundtable's own clients make their documents, unless
  // the test asks for Yjs's default (`gc: true`), which most Yjs applications keep.
  const doc = new Y.Doc({ gc });
  const provider = new WebsocketProvider(
    `${server.wsBaseUrl}/api/conferences`,
    `${conferenceId}/sync`,
    doc,
    {
      WebSocketPolyfill: AuthenticatedWebSocket,
      // Clients in one process would otherwise also sync through a BroadcastChannel,
      // around the server: the tests must see only what the server relays.
      disableBc: true,
      // A refused connection must fail the test, not be retried forever.
      shouldReconnect: () => false,
    },
  );
  const refusals = [];
  provider.messageHandlers[messageAuth] = (_encoder, decoder) => {
    authProtocol.readAuthMessage(decoder, doc, (_doc, reason) => refusals.push(reason));
  };
  const closes = [];
  provider.on('connection-close', (event) => {
    if (event) closes.push({ code: event.code, reason: event.reason });
  });
  const close = () => {
    provider.destroy();
    // The awareness instance keeps a timer until its document is destroyed.
    doc.destroy();
  };
  try {
    await waitFor(() => provider.synced || closes.length > 0, {
      what: 'the first sync',
      timeoutMs,
    });
  } catch (error) {
    close();
    throw error;
  }
  if (!provider.synced) {
    close();
    throw new Error(`the server closed the connection: ${JSON.stringify(closes)}`);
  }
  return { doc, provider, refusals, closes, close };
}

/**
 * Adds a board item the way the server requires: the item map is created with its
 * entries, `author` included, in one transaction.
 */
export function addItem(doc, { id, heading = 'worries', position = '80', text, author }) {
  const item = new Y.Map([
    ['heading', heading],
    ['position', position],
    ['text', new Y.Text(text)],
    ['author', author],
    ['children', new Y.Map()],
  ]);
  doc.getMap('board').set(id, item);
  return item;
}

/** The board as plain data: item id → `{heading, position, text, author, ...}`. */
export function boardOf(doc) {
  return doc.getMap('board').toJSON();
}
