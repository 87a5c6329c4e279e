// The sync endpoint's edges, over a raw WebSocket: who may open it, and how and why
// the server closes a connection.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';

import { createConference, expectStatus, request, signIn } from '../lib/api.mjs';
import { startServer } from '../lib/server.mjs';
import { connect } from '../lib/yjs.mjs';

describe('the sync endpoint', { timeout: 60_000 }, () => {
  let server;
  let chairCookie;

  before(async () => {
    server = await startServer({ label: 'sync-protocol' });
    chairCookie = await signIn(server);
  });
  after(() => server?.stop());

  /** A conference with one invited professional. */
  async function withProfessional() {
    const { conference, invited } = await createConference(server, chairCookie, {
      participants: [{ name: 'Priya Shah', role: 'professional' }],
    });
    return { conference, professional: invited[0] };
  }

  /**
   * Opens a raw WebSocket. Resolves to `{ socket, closed }` once open, where `closed`
   * resolves to the close frame's code and reason; rejects with the HTTP status if
   * the upgrade is refused.
   */
  async function openSocket(conferenceId, headers) {
    const socket = new WebSocket(`${server.wsBaseUrl}/api/conferences/${conferenceId}/sync`, {
      headers,
      handshakeTimeout: 5_000,
    });
    const closed = new Promise((resolve) => {
      socket.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    });
    await new Promise((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('unexpected-response', (_request, response) => {
        reject(new Error(`HTTP ${response.statusCode}`));
        socket.terminate();
      });
      // After a refused upgrade, terminate() reports an error too: it is expected.
      socket.on('error', reject);
    });
    return { socket, closed };
  }

  /** Bounds a wait on a promise. */
  function within(ms, promise, what) {
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
  }

  test('a text frame closes the connection with 1003', { timeout: 10_000 }, async () => {
    const { conference, professional } = await withProfessional();
    const { socket, closed } = await openSocket(conference.id, {
      authorization: `Bearer ${professional.token}`,
    });
    socket.send('hello');
    const { code, reason } = await within(5_000, closed, 'the close frame');
    assert.equal(code, 1003);
    assert.match(reason, /only binary/);
  });

  test('a message that is not a y-protocols message closes the connection with 1007', { timeout: 10_000 }, async () => {
    const { conference, professional } = await withProfessional();
    const { socket, closed } = await openSocket(conference.id, {
      authorization: `Bearer ${professional.token}`,
    });
    socket.send(Buffer.from([9, 9, 9]));
    const { code } = await within(5_000, closed, 'the close frame');
    assert.equal(code, 1007);
  });

  test('removing a participant closes their connection with 4403, and they cannot come back', { timeout: 10_000 }, async (t) => {
    const { conference, professional } = await withProfessional();
    const client = await connect(server, conference.id, { bearer: professional.token });
    t.after(client.close);

    await expectStatus(
      204,
      server.baseUrl,
      'DELETE',
      `/api/conferences/${conference.id}/participants/${professional.participant.id}`,
      { cookie: chairCookie },
    );

    await within(
      5_000,
      new Promise((resolve) => {
        if (client.closes.length > 0) resolve();
        client.provider.on('connection-close', resolve);
      }),
      'the connection to close',
    );
    assert.deepEqual(client.closes[0], {
      code: 4403,
      reason: 'you have been removed from this conference',
    });
    await assert.rejects(
      openSocket(conference.id, { authorization: `Bearer ${professional.token}` }),
      /HTTP 410/,
    );
    const me = await request(server.baseUrl, 'GET', '/api/me', { bearer: professional.token });
    assert.equal(me.status, 410);
  });

  test("a page on another site cannot open the chair's conference with the chair's cookie", { timeout: 10_000 }, async () => {
    const { conference } = await withProfessional();
    const host = new URL(server.baseUrl).host;
    await assert.rejects(
      openSocket(conference.id, { cookie: chairCookie, origin: 'http://elsewhere.example' }),
      /HTTP 403/,
    );
    const { socket } = await openSocket(conference.id, {
      cookie: chairCookie,
      origin: `http://${host}`,
    });
    socket.close();
  });

  test('someone still waiting in the lobby cannot open the board', { timeout: 10_000 }, async () => {
    const { conference } = await withProfessional();
    const entered = await expectStatus(201, server.baseUrl, 'POST', '/api/lobby', {
      body: { room_code: conference.room_code, name: 'Pat Neighbour' },
    });
    await assert.rejects(
      openSocket(conference.id, { cookie: entered.cookie }),
      /HTTP 403/,
    );
  });
});
