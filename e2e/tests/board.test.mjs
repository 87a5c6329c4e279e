// The live board in Debian's Chromium: a parent on a phone opens their join link, goes
// to the board, and sees an item a professional adds through a stock Yjs client appear
// without reloading the page.

import assert from 'node:assert/strict';
import { access } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { accessibilityViolations, launchChromium, openPage, screenshot } from '../lib/browser.mjs';
import { createConference, signIn } from '../lib/api.mjs';
import { clientDir, startServer } from '../lib/server.mjs';
import { addItem, connect } from '../lib/yjs.mjs';

const PHONE = { width: 390, height: 844 };
const DEFAULT_HEADINGS = [
  'What are we worried about?',
  'Complicating factors',
  "What's working well?",
  'What needs to happen?',
];

describe('the live board', { timeout: 90_000 }, () => {
  let server;
  let browser;

  before(async () => {
    await access(path.join(clientDir, 'index.html')).catch(() => {
      throw new Error(`the browser client is not built in ${clientDir}: run scripts/build-client.sh`);
    });
    server = await startServer({ label: 'board' });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test("a parent on a phone sees the board, and a professional's item appears live", { timeout: 45_000 }, async (t) => {
    const cookie = await signIn(server);
    const {
      conference,
      invited: [jo, priya],
    } = await createConference(server, cookie, {
      title: 'Conference for Alex',
      participants: [
        { name: 'Jo Parent', role: 'parent' },
        { name: 'Priya Shah', role: 'professional', agency: 'Health visiting' },
      ],
    });

    const { page, problems } = await openPage(browser, t, { viewport: PHONE });
    await page.goto(jo.join_link);
    await page.getByText('Welcome, Jo Parent. You have joined the conference.').waitFor();
    // A parent's phone goes on to the safety scale page, which leads to the board.
    await page.getByRole('link', { name: 'Continue' }).click();
    await page.waitForURL(`${server.baseUrl}/conference/${conference.id}/score`);
    await page.getByRole('link', { name: 'See the board' }).click();
    await page.waitForURL(`${server.baseUrl}/conference/${conference.id}`);

    await page.getByRole('heading', { level: 1, name: 'Conference for Alex' }).waitFor();
    const status = page.getByRole('status');
    await status.filter({ hasText: 'Connected' }).waitFor();
    assert.equal(await status.getAttribute('aria-live'), 'polite');
    for (const title of DEFAULT_HEADINGS) {
      await page.getByRole('heading', { level: 2, name: title }).waitFor();
    }
    await page.getByText('Now: Before the meeting').waitFor();
    // Jo's own presence comes back from the server with her name.
    await page.getByRole('listitem').filter({ hasText: 'Jo Parent (Parent)' }).waitFor();

    // On a phone the headings are stacked, one under the other.
    const worries = await page.getByRole('heading', { level: 2, name: DEFAULT_HEADINGS[0] }).boundingBox();
    const complicating = await page.getByRole('heading', { level: 2, name: DEFAULT_HEADINGS[1] }).boundingBox();
    assert.equal(Math.round(worries.x), Math.round(complicating.x));
    assert.ok(complicating.y > worries.y, 'the second heading is below the first');

    // A professional adds an item through a stock Yjs client.
    const professional = await connect(server, conference.id, { bearer: priya.token });
    t.after(professional.close);
    addItem(professional.doc, {
      id: 'item-from-priya',
      heading: 'worries',
      text: 'Alex has missed three health appointments.',
      author: priya.participant.id,
    });

    const worriesSection = page.getByRole('region', { name: DEFAULT_HEADINGS[0] });
    await worriesSection.getByText('Alex has missed three health appointments.').waitFor();
    await page.getByRole('listitem').filter({ hasText: 'Priya Shah (Professional)' }).waitFor();
    assert.deepEqual(professional.refusals, []);
    assert.equal(await status.textContent(), 'Connected');

    await screenshot(page, 'board-phone');
    assert.deepEqual(problems, [], 'the page logged no errors');
    assert.deepEqual(await accessibilityViolations(page), [], 'axe-core found no violations');
  });
});
