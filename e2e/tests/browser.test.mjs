// Debian's Chromium against the real server and the built client: the home page,
// a chair signing in, and a participant opening their personal join link.

import assert from 'node:assert/strict';
import { access } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { accessibilityViolations, launchChromium, openPage, screenshot } from '../lib/browser.mjs';
import { createConference, signIn } from '../lib/api.mjs';
import { clientDir, startServer } from '../lib/server.mjs';

describe('in a browser', { timeout: 90_000 }, () => {
  let server;
  let browser;

  before(async () => {
    await access(path.join(clientDir, 'index.html')).catch(() => {
      throw new Error(`the browser client is not built in ${clientDir}: run scripts/build-client.sh`);
    });
    server = await startServer({ label: 'browser' });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  /** No uncaught errors, and no WCAG 2.2 AA violations axe-core can find. */
  async function assertHealthy(page, problems) {
    assert.deepEqual(problems, [], 'the page logged no errors');
    assert.deepEqual(await accessibilityViolations(page), [], 'axe-core found no violations');
  }

  test('the home page says what Roundtable is and offers chairs a sign-in form', { timeout: 30_000 }, async (t) => {
    const { page, problems } = await openPage(browser, t);
    await page.goto(`${server.baseUrl}/`);

    await page.getByRole('heading', { level: 1, name: 'Roundtable' }).waitFor();
    await page.getByRole('heading', { name: 'Chairs: sign in' }).waitFor();
    assert.ok(await page.getByLabel('Email address').isVisible());
    assert.ok(await page.getByLabel('Password').isVisible());
    assert.ok(await page.getByRole('button', { name: 'Sign in' }).isVisible());
    assert.match(await page.title(), /Roundtable/);

    await screenshot(page, 'home-sign-in');
    await assertHealthy(page, problems);
  });

  test('a chair signs in through the form and sees their conferences', { timeout: 30_000 }, async (t) => {
    const cookie = await signIn(server);
    const { conference } = await createConference(server, cookie, {
      title: 'Alex and Sam Taylor',
    });
    const { page, problems } = await openPage(browser, t);
    await page.goto(`${server.baseUrl}/`);

    await page.getByLabel('Email address').fill(server.chair.email);
    await page.getByLabel('Password').fill(server.chair.password);
    await page.getByRole('button', { name: 'Sign in' }).click();

    await page.getByRole('heading', { name: 'Your conferences' }).waitFor();
    const item = page.locator('li.conference').filter({ hasText: 'Alex and Sam Taylor' });
    await item.waitFor();
    assert.match(await item.innerText(), new RegExp(`Room code: ${conference.room_code.replace(/(.{4})(?=.)/g, '$1 ')}`));
    assert.match(await page.innerText('main'), /You are signed in as Sam Chair/);
    assert.match(await page.title(), /Your conferences/);

    await screenshot(page, 'chair-conferences');
    await assertHealthy(page, problems);
  });

  test('a join link welcomes the participant by name and leaves no token in the address bar', { timeout: 30_000 }, async (t) => {
    const cookie = await signIn(server);
    const {
      invited: [jo],
    } = await createConference(server, cookie, {
      participants: [{ name: 'Jo Parent', role: 'parent' }],
    });
    assert.ok(jo.join_link.startsWith(`${server.baseUrl}/join#`), jo.join_link);
    const { page, problems } = await openPage(browser, t);
    await page.goto(jo.join_link);

    await page.getByRole('heading', { level: 1, name: 'Join your conference' }).waitFor();
    await page.getByText('Welcome, Jo Parent. You have joined the conference.').waitFor();
    assert.equal(page.url(), `${server.baseUrl}/join`);
    assert.equal(await page.evaluate(() => location.hash), '');

    // The browser now holds the participant's session: a reload still welcomes them.
    await page.reload();
    await page.getByText('Welcome, Jo Parent.').waitFor();

    await screenshot(page, 'join-welcome');
    await assertHealthy(page, problems);
  });
});
