// Stock Yjs clients talk to the real server over y-protocols: what one participant
// may write reaches the others, what they may not is refused and reaches nobody, and
// presence carries the name the server knows.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { createConference, expectStatus, signIn } from '../lib/api.mjs';
import { startServer } from '../lib/server.mjs';
import { waitFor } from '../lib/wait.mjs';
import { addItem, boardOf, connect } from '../lib/yjs.mjs';

const PROFESSIONAL = { name: 'Priya Shah', role: 'professional', agency: 'Health visiting' };
const PARENT = { name: 'Jo Parent', role: 'parent' };

describe('stock Yjs clients', { timeout: 60_000 }, () => {
  let server;
  let chairCookie;

  before(async () => {
    server = await startServer({ label: 'yjs-interop' });
    chairCookie = await signIn(server);
  });
  after(() => server?.stop());

  /** A conference with a professional and a parent, each connected with their token. */
  async function meeting(t) {
    const setup = await createConference(server, chairCookie, {
      participants: [PROFESSIONAL, PARENT],
    });
    const [professional, parent] = setup.invited;
    const clients = {};
    for (const [name, invited] of [['professional', professional], ['parent', parent]]) {
      const client = await connect(server, setup.conference.id, { bearer: invited.token });
      t.after(client.close);
      clients[name] = { ...client, id: invited.participant.id };
    }
    return { ...setup, ...clients };
  }

  /** A client that connects after the fact sees only what the server kept. */
  async function lateJoiner(t, conferenceId) {
    const client = await connect(server, conferenceId, { cookie: chairCookie });
    t.after(client.close);
    return client;
  }

  test('an item a professional adds reaches the parent, and the server keeps it', { timeout: 20_000 }, async (t) => {
    const { conference, professional, parent } = await meeting(t);

    addItem(professional.doc, {
      id: 'item-from-priya',
      heading: 'worries',
      text: 'Alex has missed three health appointments.',
      author: professional.id,
    });

    const seen = await waitFor(() => boardOf(parent.doc)['item-from-priya'], {
      what: "the professional's item on the parent's board",
    });
    assert.equal(seen.text, 'Alex has missed three health appointments.');
    assert.equal(seen.heading, 'worries');
    assert.equal(seen.author, professional.id);
    assert.deepEqual(professional.refusals, []);

    const late = await lateJoiner(t, conference.id);
    assert.equal(
      boardOf(late.doc)['item-from-priya']?.text,
      'Alex has missed three health appointments.',
    );
  });

  test("a parent's item is refused: only the parent hears why, and nobody else sees it", { timeout: 20_000 }, async (t) => {
    const { conference, professional, parent } = await meeting(t);

    addItem(parent.doc, {
      id: 'item-from-jo',
      heading: 'working_well',
      text: 'I take Alex to school every day.',
      author: parent.id,
    });

    const [reason] = await waitFor(() => parent.refusals.length > 0 && parent.refusals, {
      what: 'a permission-denied message to the parent',
    });
    assert.match(reason, /your role cannot change this conference's board/);
    assert.deepEqual(professional.refusals, [], 'the professional is told nothing');
    assert.ok(parent.provider.wsconnected, 'a refusal does not end the connection');

    // The server relays changes to one room in order. Once a change made after the
    // refusal reaches the professional, the refused item would have arrived before it.
    await expectStatus(200, server.baseUrl, 'POST', `/api/conferences/${conference.id}/phase`, {
      cookie: chairCookie,
      body: { phase: 'information_sharing' },
    });
    await waitFor(() => professional.doc.getMap('meta').get('phase') === 'information_sharing', {
      what: 'the phase change to reach the professional',
    });
    assert.equal(boardOf(professional.doc)['item-from-jo'], undefined);

    const late = await lateJoiner(t, conference.id);
    assert.equal(late.doc.getMap('meta').get('phase'), 'information_sharing');
    assert.equal(boardOf(late.doc)['item-from-jo'], undefined, 'the server did not keep it');
  });

  test('a client with garbage collection on converges with everyone, offline edits included', { timeout: 30_000 }, async (t) => {
    const setup = await createConference(server, chairCookie, {
      participants: [PROFESSIONAL, PARENT],
    });
    const [invitedProfessional, invitedParent] = setup.invited;
    // Made with plain `new Y.Doc()`: garbage collection on, as in most Yjs applications.
    const professional = await connect(server, setup.conference.id, {
      bearer: invitedProfessional.token,
      gc: true,
    });
    t.after(professional.close);
    const parent = await connect(server, setup.conference.id, { bearer: invitedParent.token });
    t.after(parent.close);
    const author = invitedProfessional.participant.id;

    // While the server is away: an item kept, an item added and removed again (its
    // content collected), and words typed and partly deleted.
    professional.provider.disconnect();
    addItem(professional.doc, { id: 'kept', text: 'School says attendance is 80%.', author });
    addItem(professional.doc, { id: 'dropped', text: 'Typed in the wrong conference.', author });
    professional.doc.getMap('board').delete('dropped');
    const kept = professional.doc.getMap('board').get('kept').get('text');
    kept.insert(kept.length, ' It was 60% last term.');
    kept.delete(0, 'School says '.length);
    professional.provider.connect();

    const expected = 'attendance is 80%. It was 60% last term.';
    await waitFor(() => boardOf(parent.doc).kept?.text === expected, {
      what: "the professional's offline edits on the parent's board",
    });
    assert.equal(boardOf(parent.doc).dropped, undefined);
    assert.deepEqual(professional.refusals, [], 'nothing of the re-sync is refused');

    // Later edits are taken too, and the server keeps a document everyone can load.
    addItem(professional.doc, { id: 'later', text: 'GP has seen Alex twice.', author });
    professional.doc.getMap('board').delete('kept');
    await waitFor(() => boardOf(parent.doc).later && !boardOf(parent.doc).kept, {
      what: 'the later edits on the parent board',
    });
    assert.deepEqual(professional.refusals, []);
    await server.restart();
    const late = await lateJoiner(t, setup.conference.id);
    assert.deepEqual(Object.keys(boardOf(late.doc)), ['later']);
    assert.equal(boardOf(late.doc).later.text, 'GP has seen Alex twice.');
  });

  test('presence shows the name and role the server knows, not the ones a client claims', { timeout: 20_000 }, async (t) => {
    const { conference, professional, parent } = await meeting(t);

    professional.provider.awareness.setLocalState({
      user: { id: 'someone-else', name: 'The Chair', role: 'chair' },
      cursor: { item: 'item-1', index: 4 },
    });

    const state = await waitFor(
      () => {
        const s = parent.provider.awareness.getStates().get(professional.doc.clientID);
        return s?.cursor && s;
      },
      { what: "the professional's presence at the parent" },
    );
    assert.deepEqual(state.user, {
      id: professional.id,
      name: PROFESSIONAL.name,
      role: 'professional',
    });
    assert.deepEqual(state.cursor, { item: 'item-1', index: 4 }, 'the rest of the state is kept');

    // Someone who connects later is greeted with the same, server-set identity.
    const late = await lateJoiner(t, conference.id);
    const greeted = await waitFor(
      () => late.provider.awareness.getStates().get(professional.doc.clientID)?.cursor &&
        late.provider.awareness.getStates().get(professional.doc.clientID),
      { what: "the professional's presence at a late joiner" },
    );
    assert.equal(greeted.user.name, PROFESSIONAL.name);
    assert.equal(greeted.user.role, 'professional');
  });

  test('a document of several MiB reaches a stock client that joins later', { timeout: 40_000 }, async (t) => {
    // Node's `ws` closes a socket after 16,384 fragments of one message: the server
    // sends each message as one frame, so the whole document arrives however large.
    const { conference, professional } = await meeting(t);
    const item = addItem(professional.doc, {
      id: 'long-report',
      heading: 'worries',
      text: '',
      author: professional.id,
    });
    const text = item.get('text');
    const paragraph = 'The health visitor has written a long report about the family. '.repeat(8_000);
    // Each insert is one update of about 500 KiB, under the 1 MiB a message may be.
    for (let i = 0; i < 10; i++) {
      text.insert(text.length, paragraph);
      await waitFor(() => professional.provider.wsconnected, { what: 'the connection staying open' });
    }
    const expected = text.length;
    assert.ok(expected > 4 * 1024 * 1024, `${expected} characters`);
    const late = await connect(server, conference.id, { cookie: chairCookie, timeoutMs: 20_000 });
    t.after(late.close);
    await waitFor(() => late.doc.getMap('board').get('long-report')?.get('text')?.length === expected, {
      what: 'the whole report at the late joiner',
      timeoutMs: 20_000,
    });
    assert.deepEqual(late.closes, []);
    assert.deepEqual(professional.refusals, []);
  });

  test('a connection without valid credentials is refused before it opens', { timeout: 20_000 }, async () => {
    const { conference } = await createConference(server, chairCookie);
    await assert.rejects(
      connect(server, conference.id, { bearer: 'not-a-real-token' }),
      /the server closed the connection/,
    );
  });
});
