// No secret reaches the server's log, even at its most verbose (`ROUNDTABLE_LOG=trace`,
// which also turns on every library's logging: sqlx, hyper, the WebSocket code).
//
// A whole conference runs over the real HTTP API and sync: the chair signs in,
// invites people, they open their links, someone joins from the lobby by room code
// and is admitted, stock Yjs clients connect with a bearer token and with cookies, a
// safety scale is opened, scored, closed and revealed, someone is removed, someone
// gets a new link, and the chair signs out; wrong tokens and cookies are tried too.
// Every secret seen on the way is collected: the chair's password, every join token
// (and its form inside the join link), every `rt_session` cookie value and every
// Authorization header. Then the whole log is read, and none of them, nor the first
// 16 characters of any token or cookie, may be in it (nor their hex, as the WebSocket
// library dumps frames in hex at trace level).

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fsp from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';

import { request } from '../lib/api.mjs';
import { startServer } from '../lib/server.mjs';
import { waitFor } from '../lib/wait.mjs';
import { addItem, connect } from '../lib/yjs.mjs';

const CHAIR = Object.freeze({
  email: 'secret.keeper@example.org',
  name: 'Morgan Chair',
  password: 'Wv9#plum orchard ladder 41q',
});

const INVITED = [
  { name: 'Priya Shah', role: 'professional', agency: 'Health visiting' },
  { name: 'Jo Taylor', role: 'parent' },
  { name: 'Nan Taylor', role: 'carer' },
  { name: 'Lee Minutes', role: 'minute_taker' },
];

describe('secrets in the server log', { timeout: 60_000 }, () => {
  let server;
  /** label → secret value: everything that must never be logged. */
  const secrets = new Map();
  let count = 0;
  const keep = (label, value) => {
    assert.ok(typeof value === 'string' && value.length >= 16, `${label} looks like a secret`);
    secrets.set(`${label} #${++count}`, value);
  };
  /** The value of a `rt_session=...` cookie. */
  const cookieValue = (cookie) => cookie.slice(cookie.indexOf('=') + 1);

  /**
   * `request`, keeping every credential sent and every cookie and token received.
   * Fails unless the status is `expected`.
   */
  async function call(expected, method, path, options = {}) {
    if (options.cookie) keep('cookie sent', cookieValue(options.cookie));
    if (options.bearer) keep('authorization header', `Bearer ${options.bearer}`);
    const result = await request(server.baseUrl, method, path, options);
    assert.equal(
      result.status,
      expected,
      `${method} ${path}: expected ${expected}, got ${result.status} ${JSON.stringify(result.body)}`,
    );
    if (result.cookie && cookieValue(result.cookie)) keep('rt_session cookie', cookieValue(result.cookie));
    return result;
  }
  /** Keeps an invitation's token and the token's form inside its join link. */
  const keepInvitation = ({ token, join_link }) => {
    keep('join token', token);
    const url = new URL(join_link);
    assert.equal(url.pathname, '/join');
    keep('join link token', url.hash.slice(1));
    keep('join link token (decoded)', decodeURIComponent(url.hash.slice(1)));
    return token;
  };

  before(async () => {
    server = await startServer({ label: 'secrets', chair: CHAIR, env: { ROUNDTABLE_LOG: 'trace' } });
  });
  after(async () => {
    await server?.stop();
  });

  test('a whole conference at trace level logs no password, token or cookie', async () => {
    keep('password', CHAIR.password);
    keep('password (URL-encoded)', encodeURIComponent(CHAIR.password));

    // The chair signs in; a wrong password first.
    await call(401, 'POST', '/api/session', {
      body: { email: CHAIR.email, password: `${CHAIR.password} but wrong` },
    });
    keep('wrong password', `${CHAIR.password} but wrong`);
    const { cookie: chair } = await call(204, 'POST', '/api/session', {
      body: { email: CHAIR.email, password: CHAIR.password },
    });
    assert.ok(chair, 'signing in sets a cookie');
    await call(200, 'GET', '/api/me', { cookie: chair });

    // The chair creates a conference, inviting four people, and invites a fifth.
    const { body: created } = await call(201, 'POST', '/api/conferences', {
      cookie: chair,
      body: {
        title: 'Conference for Alex',
        kind: 'initial',
        scheduled_start: '2030-03-04T10:00:00+00:00',
        children: [{ name: 'Alex', date_of_birth: '2019-04-30' }],
        headings_template: 'four_headings',
        participants: INVITED,
      },
    });
    const id = created.conference.id;
    const conferencePath = `/api/conferences/${id}`;
    const tokens = created.participants.map(keepInvitation);
    const [priya, jo, nan, lee] = created.participants.map((p) => p.participant);
    const { body: extra } = await call(201, 'POST', `${conferencePath}/participants`, {
      cookie: chair,
      body: { name: 'Room Screen', role: 'room_display' },
    });
    const displayToken = keepInvitation(extra);
    const { body: details } = await call(200, 'GET', conferencePath, { cookie: chair });
    const child = details.children[0].id;

    // People open their links and get sessions; an unknown token is refused.
    const bogusToken = randomBytes(32).toString('base64url');
    keep('unknown join token', bogusToken);
    await call(410, 'POST', '/api/join', { body: { token: bogusToken } });
    const { cookie: joCookie } = await call(200, 'POST', '/api/join', { body: { token: tokens[1] } });
    const { cookie: nanCookie } = await call(200, 'POST', '/api/join', { body: { token: tokens[2] } });
    const { cookie: leeCookie } = await call(200, 'POST', '/api/join', { body: { token: tokens[3] } });
    for (const cookie of [joCookie, nanCookie, leeCookie]) {
      await call(200, 'GET', '/api/me', { cookie });
    }
    // Priya and the room display use their tokens as bearer tokens.
    await call(200, 'GET', '/api/me', { bearer: tokens[0] });
    await call(200, 'GET', conferencePath, { bearer: displayToken });
    // Wrong credentials are secrets too, and are refused.
    const bogusCookie = `rt_session=${randomBytes(32).toString('base64url')}`;
    await call(401, 'GET', '/api/me', { cookie: bogusCookie });
    await call(410, 'GET', '/api/me', { bearer: randomBytes(32).toString('base64url') });

    // Someone in the room joins from the lobby by the room code; the chair admits them.
    const { body: waiting, cookie: patCookie } = await call(201, 'POST', '/api/lobby', {
      body: { room_code: created.conference.room_code.toLowerCase(), name: 'Pat Neighbour' },
    });
    assert.ok(patCookie, 'joining the lobby sets a cookie');
    const { body: me } = await call(200, 'GET', '/api/me', { cookie: patCookie });
    assert.equal(me.admitted, false);
    await call(403, 'GET', conferencePath, { cookie: patCookie });
    const { body: lobby } = await call(200, 'GET', `${conferencePath}/lobby`, { cookie: chair });
    assert.deepEqual(lobby.map((p) => p.id), [waiting.participant.id]);
    await call(200, 'POST', `${conferencePath}/lobby/${waiting.participant.id}/admit`, {
      cookie: chair,
      body: { role: 'supporter' },
    });

    // Stock Yjs clients connect with a bearer token and with cookies; Priya adds an
    // item, Jo's is refused.
    keep('authorization header', `Bearer ${tokens[0]}`);
    const priyaDoc = await connect(server, id, { bearer: tokens[0] });
    const joDoc = await connect(server, id, { cookie: joCookie });
    const patDoc = await connect(server, id, { cookie: patCookie });
    const chairDoc = await connect(server, id, { cookie: chair });
    const docs = [priyaDoc, joDoc, patDoc, chairDoc];
    try {
      addItem(priyaDoc.doc, { id: 'item-1', text: 'Alex has missed three health visits.', author: priya.id });
      await waitFor(() => chairDoc.doc.getMap('board').has('item-1'), { what: 'the item reaching the chair' });
      addItem(joDoc.doc, { id: 'item-2', text: 'I take Alex to school.', author: jo.id });
      await waitFor(() => joDoc.refusals.length > 0, { what: "the refusal of Jo's item" });

      // A safety scale: opened, scored (by bearer, by cookie, by the chair for
      // someone), closed and revealed, while a phone follows it live.
      await call(200, 'POST', `${conferencePath}/phase`, { cookie: chair, body: { phase: 'scaling' } });
      keep('cookie sent', cookieValue(nanCookie));
      const live = await fetch(`${server.baseUrl}${conferencePath}/scales/live`, {
        headers: { cookie: nanCookie },
        signal: AbortSignal.timeout(10_000),
      });
      assert.equal(live.status, 200);
      const reader = live.body.getReader();
      await reader.read();
      const { body: scale } = await call(201, 'POST', `${conferencePath}/scales`, {
        cookie: chair,
        body: { subject: { kind: 'child', child } },
      });
      const scalePath = `${conferencePath}/scales/${scale.id}`;
      await call(200, 'PUT', `${scalePath}/vote`, { bearer: tokens[0], body: { score: 4, reason: 'Visits are kept now' } });
      await call(200, 'PUT', `${scalePath}/vote`, { cookie: joCookie, body: { score: 7 } });
      await call(200, 'PUT', `${scalePath}/vote`, { cookie: patCookie, body: { score: 6 } });
      await call(200, 'PUT', `${scalePath}/votes/${nan.id}`, { cookie: chair, body: { score: 8 } });
      await call(200, 'GET', `${conferencePath}/scales`, { cookie: leeCookie });
      await waitFor(() => chairDoc.doc.getMap('scales').toJSON()[scale.id]?.scored === 4, {
        what: 'the count of scores in the document',
      });
      await call(200, 'POST', `${scalePath}/close`, { cookie: chair });
      const { body: revealed } = await call(200, 'POST', `${scalePath}/reveal`, { cookie: chair });
      assert.equal(revealed.results.length, 4);
      await reader.cancel();

      // The chair removes Priya: her connection is closed and her token stops working.
      await call(204, 'DELETE', `${conferencePath}/participants/${priya.id}`, { cookie: chair });
      await waitFor(() => priyaDoc.closes.some((c) => c.code === 4403), { what: "Priya's connection closing" });
      await call(410, 'GET', '/api/me', { bearer: tokens[0] });

      // Lee lost their link: the chair gives them a new one, the old one stops working.
      const { body: renewed } = await call(200, 'POST', `${conferencePath}/participants/${lee.id}/link`, {
        cookie: chair,
      });
      const newToken = keepInvitation(renewed);
      await call(410, 'POST', '/api/join', { body: { token: tokens[3] } });
      await call(200, 'POST', '/api/join', { body: { token: newToken } });
      const leeDoc = await connect(server, id, { bearer: newToken });
      keep('authorization header', `Bearer ${newToken}`);
      docs.push(leeDoc);
    } finally {
      for (const doc of docs) doc.close();
    }

    // The chair signs out; the old cookie no longer works.
    await call(204, 'DELETE', '/api/session', { cookie: chair });
    await call(401, 'GET', '/api/me', { cookie: chair });

    // Stop the server, so every line it wrote is in the file, then read it all.
    await server.stop();
    const log = await fsp.readFile(server.logPath, 'utf8');

    // The log is real and verbose: the test cannot pass by reading an empty file.
    assert.ok(log.length > 10_000, `the log is only ${log.length} characters long`);
    for (const evidence of [
      ' TRACE ',
      ' DEBUG ',
      'chair signed in',
      'join link opened',
      'waiting in the lobby',
      'admitted from the lobby',
      'connected',
      'update refused',
      'safety scale opened',
      'participant removed',
      'new join link',
      'sqlx::query',
    ]) {
      assert.ok(log.includes(evidence), `the log has no "${evidence}": was it verbose?`);
    }

    // No secret, nor the first 16 characters of a token or cookie, is in the log.
    const leaks = [];
    for (const [label, value] of secrets) {
      // As written, as the hex of a dumped frame, and a token's or cookie's beginning.
      const forms = [value, Buffer.from(value).toString('hex')];
      if (!label.includes('password')) forms.push(value.replace(/^Bearer /, '').slice(0, 16));
      for (const form of forms) {
        const at = log.indexOf(form);
        if (at >= 0) {
          const line = log.slice(log.lastIndexOf('\n', at) + 1, log.indexOf('\n', at));
          leaks.push(`${label} (${JSON.stringify(form)}) in: ${line.slice(0, 300)}`);
        }
      }
    }
    assert.deepEqual(leaks, [], 'secrets in the server log');

    // Nor is what was said: the board, or a score's reason (the WebSocket libraries
    // would write every message they carry at trace level).
    for (const said of ['Alex has missed three health visits.', 'Visits are kept now']) {
      for (const form of [said, Buffer.from(said).toString('hex')]) {
        assert.ok(!log.includes(form), `"${said}" is in the server log`);
      }
    }
    const distinct = new Set(secrets.values());
    assert.ok(distinct.size >= 20, `only ${distinct.size} distinct secrets were checked`);
    console.log(`checked ${distinct.size} distinct secrets against ${log.length} characters of log`);
  });
});
