// A change the server refuses, in Debian's Chromium: the minute-taker adds an item and
// is changing it when the chair closes the conference, and goes on typing into it.
// The change is refused (a closed conference's record cannot be changed), the
// minute-taker is told, and the board stays on the screen throughout: it never goes
// empty and never says "Reconnecting…".

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { launchChromium, openPage } from '../lib/browser.mjs';
import { createConference, expectStatus, signIn } from '../lib/api.mjs';
import { startServer } from '../lib/server.mjs';

const LAPTOP = { width: 1366, height: 768 };
const WORRIES = 'What are we worried about?';
const ITEM = 'Dad missed two meetings';

describe('a refused change', { timeout: 90_000 }, () => {
  let server;
  let browser;

  before(async () => {
    server = await startServer({ label: 'refusal' });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('leaves the board on the screen and says why', { timeout: 60_000 }, async (t) => {
    const cookie = await signIn(server);
    const {
      conference,
      invited: [mo],
    } = await createConference(server, cookie, {
      title: 'Conference for Sam',
      participants: [{ name: 'Mo Minutes', role: 'minute_taker' }],
    });

    const { page, problems } = await openPage(browser, t, { viewport: LAPTOP });
    await page.goto(mo.join_link);
    await page.getByText('Welcome, Mo Minutes. You have joined the conference.').waitFor();
    await page.getByRole('link', { name: 'Open the board' }).click();
    await page.waitForURL(`${server.baseUrl}/conference/${conference.id}`);
    await page.getByRole('status').filter({ hasText: 'Connected' }).waitFor();

    const field = page.getByLabel(`Add to “${WORRIES}”`);
    await field.fill(ITEM);
    await field.press('Enter');
    const worries = page.getByRole('region', { name: WORRIES });
    await worries.getByText(ITEM, { exact: true }).waitFor();
    await page.getByText('All changes saved').waitFor();

    // From here on, note every moment the item is missing from the page or the
    // connection is said to be anything but connected.
    await page.evaluate((item) => {
      window.__lost = [];
      const look = () => {
        const text = document.body.innerText;
        // While it is being changed, the item's words are in the editor's field.
        const fields = [...document.querySelectorAll('textarea, input')].map((f) => f.value);
        if (!text.includes(item) && !fields.some((v) => v.includes(item))) {
          window.__lost.push('the item was not on the page');
        }
        if (text.includes('Reconnecting')) window.__lost.push('the page said Reconnecting…');
      };
      new MutationObserver(look).observe(document.body, {
        subtree: true,
        childList: true,
        characterData: true,
      });
    }, ITEM);

    // Mo is changing the item when the chair closes the conference.
    await page.getByRole('button', { name: `Change “${ITEM}”` }).click();
    const words = page.getByLabel('Words');
    await words.waitFor();
    await expectStatus(200, server.baseUrl, 'POST', `/api/conferences/${conference.id}/close`, { cookie });
    await page.getByText('Now: Meeting closed').waitFor();

    await words.press('End');
    await words.pressSequentially(' again', { delay: 20 });

    const alert = page.getByRole('alert').filter({ hasText: 'Your last change was not kept' });
    await alert.waitFor();
    assert.match(await alert.textContent(), /the conference is closed, so the record cannot be changed/);
    // The board shows what everyone else sees: the item as it was stored.
    await page.getByRole('button', { name: 'Done' }).click();
    await worries.getByText(ITEM, { exact: true }).waitFor();
    await page.getByRole('status').filter({ hasText: 'Connected' }).waitFor();
    assert.deepEqual(await page.evaluate(() => window.__lost), []);
    assert.deepEqual(problems, [], 'the page logged no errors');
  });
});
