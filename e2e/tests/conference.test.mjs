// A whole conference in Debian's Chromium, with a separate browser context for each
// person: the chair sets up the conference and runs it from a laptop, the room view
// is on the wall (1920×1080), a professional joins by personal link from a laptop,
// and a parent joins from the room code on a phone (390×844) and waits in the lobby
// until the chair lets her in. The chair and the professional write on the board
// and see each other's words; the parent cannot change anything; the room view
// shows everything; after the server is killed and started again, nothing is lost.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { accessibilityViolations, launchChromium, openPage, screenshot } from '../lib/browser.mjs';
import { createConference, signIn } from '../lib/api.mjs';
import { startServer } from '../lib/server.mjs';
import { waitFor } from '../lib/wait.mjs';
import { addItem as addItemByYjs, connect } from '../lib/yjs.mjs';

const PHONE = { width: 390, height: 844 };
const LAPTOP = { width: 1366, height: 768 };
const WALL = { width: 1920, height: 1080 };
const WORRIES = 'What are we worried about?';
const WORKING_WELL = "What's working well?";

/** Fails the test with every WCAG 2.2 AA problem axe-core finds on the page. */
async function assertAccessible(page, where) {
  const violations = await accessibilityViolations(page);
  assert.deepEqual(violations, [], `accessibility problems on ${where}`);
}

/** The texts of the items under a heading on the board, in order. */
function itemsUnder(page, heading) {
  return page
    .getByRole('region', { name: heading, exact: true })
    .locator('.item-text')
    .allTextContents();
}

/** Waits until the items under `heading` are exactly `expected`. */
async function waitForItems(page, heading, expected, who) {
  await waitFor(
    async () => JSON.stringify(await itemsUnder(page, heading)) === JSON.stringify(expected),
    { what: `${who} to see ${JSON.stringify(expected)} under "${heading}"`, timeoutMs: 10_000 },
  );
}

/** Signs the chair in on the home page and opens the form for a new conference. */
async function startNewConference(page, server) {
  await page.goto(server.baseUrl);
  await page.getByLabel('Email address').fill(server.chair.email);
  await page.getByLabel('Password').fill(server.chair.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('link', { name: 'Set up a new conference' }).click();
}

/** Adds an item under a heading with the form below it. */
async function addItem(page, heading, text) {
  const field = page.getByLabel(`Add to “${heading}”`);
  await field.fill(text);
  await field.press('Enter');
}

describe('a conference from set-up to the board', { timeout: 150_000 }, () => {
  let server;
  let browser;

  before(async () => {
    server = await startServer({ label: 'conference' });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('the chair, a professional, a parent and the room view share one live board', { timeout: 140_000 }, async (t) => {
    // The chair signs in and sets up the conference.
    const chair = await openPage(browser, t, { viewport: LAPTOP });
    await startNewConference(chair.page, server);
    await chair.page.getByRole('heading', { name: 'New conference' }).waitFor();
    await assertAccessible(chair.page, 'the new conference form');

    await chair.page.getByLabel('Title').fill('Taylor children');
    await chair.page.getByLabel('Date', { exact: true }).fill('2030-03-04');
    await chair.page.getByLabel('Start time').fill('10:00');
    await chair.page.locator('#child-0-name').fill('Alex');
    await chair.page.getByRole('button', { name: 'Add another child' }).click();
    await chair.page.locator('#child-1-name').fill('Sam');
    await chair.page.getByRole('button', { name: 'Add a person' }).click();
    await chair.page.locator('#person-2-name').fill('Priya Shah');
    await chair.page.locator('#person-2-role').selectOption('professional');
    await chair.page.locator('#person-2-agency').fill('Health visiting');
    await chair.page.getByRole('button', { name: 'Create the conference' }).click();
    await chair.page.getByRole('heading', { name: 'Conference created' }).waitFor();
    const priyaLink = await chair.page.getByLabel('Personal link for Priya Shah').inputValue();
    assert.match(priyaLink, /\/join#[A-Za-z0-9_-]{43}$/);
    await assertAccessible(chair.page, 'the page with the personal links');
    await chair.page.getByRole('link', { name: 'Open the board' }).click();
    await chair.page.getByRole('heading', { level: 1, name: 'Taylor children' }).waitFor();
    await chair.page.getByText('Connected', { exact: true }).waitFor();
    const conferenceUrl = chair.page.url();

    // The room view, opened by the chair on the projector's screen.
    const wall = await openPage(browser, t, { viewport: WALL });
    await wall.context.addCookies(await chair.context.cookies());
    await wall.page.goto(`${conferenceUrl}/room`);
    await wall.page.getByRole('heading', { name: 'Join from your phone' }).waitFor();
    await wall.page.getByRole('img', { name: 'QR code to join the meeting' }).waitFor();
    const roomCode = (await wall.page.locator('.join-panel .room-code').textContent()).trim();
    assert.match(roomCode, /^[A-Z0-9]{4} [A-Z0-9]{4} [A-Z0-9]{4}$/);
    await assertAccessible(wall.page, 'the room view');

    // The professional opens her personal link on a laptop.
    const priya = await openPage(browser, t, { viewport: LAPTOP });
    await priya.page.goto(priyaLink);
    await priya.page.getByRole('link', { name: 'Open the board' }).click();
    await priya.page.getByRole('heading', { level: 1, name: 'Taylor children' }).waitFor();
    await priya.page.getByText('Connected', { exact: true }).waitFor();

    // The parent scans the code on the wall with her phone and asks to join.
    const jo = await openPage(browser, t, { viewport: PHONE });
    await jo.page.goto(`${server.baseUrl}/lobby?code=${roomCode.replaceAll(' ', '')}`);
    assert.equal(await jo.page.getByLabel('The code on the screen').inputValue(), roomCode);
    await assertAccessible(jo.page, 'the page for joining from the room');
    await jo.page.getByLabel('Your name').fill('Jo Taylor');
    await jo.page.getByRole('button', { name: 'Ask to join' }).click();
    await jo.page.getByText('Please wait. The chair will let you in soon.').waitFor();

    // The chair lets her in as a parent. Her phone goes by itself to the page where
    // she will give her safety score, which leads to the board.
    await chair.page.getByLabel('Let Jo Taylor in as').selectOption('parent');
    await chair.page.getByRole('button', { name: 'Let in Jo Taylor' }).click();
    await jo.page.waitForURL(`${conferenceUrl}/score`, { timeout: 15_000 });
    await jo.page.getByText('When the chair asks, you will give your score here.').waitFor();
    await jo.page.getByRole('link', { name: 'See the board' }).click();
    await jo.page.waitForURL(conferenceUrl);
    await jo.page.getByText('Connected', { exact: true }).waitFor();

    // The chair moves the meeting on; the wall follows and the join panel goes.
    await chair.page.getByLabel('Stage of the meeting').selectOption('information_sharing');
    await chair.page.getByRole('button', { name: 'Move the meeting on' }).click();
    await wall.page.locator('.room-header .phase', { hasText: 'Sharing information' }).waitFor();
    await wall.page.getByRole('heading', { name: 'Join from your phone' }).waitFor({ state: 'detached' });
    await jo.page.getByText('Sharing information').waitFor();

    // The chair and the professional write; each sees the other's words.
    await addItem(chair.page, WORRIES, 'Dad has been drinking most evenings');
    await addItem(priya.page, WORKING_WELL, 'Alex is at school every day');
    await waitForItems(priya.page, WORRIES, ['Dad has been drinking most evenings'], 'the professional');
    await waitForItems(chair.page, WORKING_WELL, ['Alex is at school every day'], 'the chair');
    await chair.page.getByText('All changes saved').waitFor();
    await priya.page.getByText('All changes saved').waitFor();

    // The professional's item says who said it; she cannot change the chair's.
    const priyaItem = priya.page.getByRole('region', { name: WORKING_WELL }).locator('.item');
    await priyaItem.getByText('Said by Priya Shah (Health visiting)').waitFor();
    assert.equal(
      await priya.page.getByRole('region', { name: WORRIES }).getByRole('button', { name: /^Change/ }).count(),
      0,
      'a professional has no way to change items she did not add',
    );

    // Both type in the professional's item at once, at each end: both keep their words.
    await priya.page.getByRole('button', { name: 'Change “Alex is at school every day”' }).click();
    await chair.page.getByRole('button', { name: 'Change “Alex is at school every day”' }).click();
    const priyaText = priya.page.getByLabel('Words');
    const chairText = chair.page.getByLabel('Words');
    await priyaText.press('Control+Home');
    await chairText.press('Control+End');
    await chair.page.getByText('Priya Shah is typing here').waitFor();
    await Promise.all([
      priyaText.pressSequentially('Since March, ', { delay: 20 }),
      chairText.pressSequentially(' and on time', { delay: 20 }),
    ]);
    const merged = 'Since March, Alex is at school every day and on time';
    await waitFor(async () => (await priyaText.inputValue()) === merged, { what: 'the merged words on the laptop', timeoutMs: 10_000 });
    await waitFor(async () => (await chairText.inputValue()) === merged, { what: "the merged words on the chair's screen", timeoutMs: 10_000 });

    // The chair records which child it is about, then closes the editor.
    await assertAccessible(chair.page, 'the board with an item being changed');
    await chair.page.getByLabel('Alex', { exact: true }).check();
    await chair.page.getByRole('button', { name: 'Done' }).click();
    await priya.page.getByRole('button', { name: 'Done' }).click();
    await waitForItems(jo.page, WORKING_WELL, [merged], 'the parent');
    await jo.page.getByText('About Alex').waitFor();

    // A second worry, moved above the first with the keyboard alone.
    await addItem(chair.page, WORRIES, 'Mum is worried about money');
    await chair.page.getByRole('button', { name: 'Change “Mum is worried about money”' }).focus();
    await chair.page.keyboard.press('Enter');
    await chair.page.getByRole('button', { name: 'Move up' }).focus();
    await chair.page.keyboard.press('Enter');
    // The item moves, and the keyboard stays on the button that moved it.
    await waitFor(
      () => chair.page.evaluate(() => document.activeElement?.textContent?.trim() === 'Move up'),
      { what: 'the focus to stay on "Move up"' },
    );
    await chair.page.keyboard.press('Escape');
    await chair.page.getByLabel('Words').waitFor({ state: 'detached' });
    await waitFor(
      () => chair.page.evaluate(() => document.activeElement?.textContent?.startsWith('Change')),
      { what: 'the focus to go back to the item' },
    );
    const worries = ['Mum is worried about money', 'Dad has been drinking most evenings'];
    await waitForItems(priya.page, WORRIES, worries, 'the professional');

    // A third worry goes under another heading, said by an agency, and a fourth is
    // deleted.
    await addItem(chair.page, WORRIES, 'The flat is cold');
    await chair.page.getByRole('button', { name: 'Change “The flat is cold”' }).click();
    await chair.page.getByLabel('Heading').selectOption({ label: 'Complicating factors' });
    await chair.page.getByLabel('Or an agency that is not here').fill('Housing');
    await chair.page.getByLabel('Or an agency that is not here').press('Tab');
    await chair.page.getByRole('button', { name: 'Done' }).click();
    await waitForItems(jo.page, 'Complicating factors', ['The flat is cold'], 'the parent');
    await jo.page.getByText('Said by Housing').waitFor();
    await addItem(chair.page, WORRIES, 'Written by mistake');
    await waitForItems(priya.page, WORRIES, [...worries, 'Written by mistake'], 'the professional');
    await chair.page.getByRole('button', { name: 'Change “Written by mistake”' }).click();
    await chair.page.getByRole('button', { name: 'Delete' }).click();
    await chair.page.getByRole('button', { name: 'Yes, delete it' }).click();
    await waitForItems(priya.page, WORRIES, worries, 'the professional');

    // The parent sees everything and can change nothing.
    await waitForItems(jo.page, WORRIES, worries, 'the parent');
    await jo.page.getByText('is typing here').waitFor({ state: 'detached' });
    assert.equal(await jo.page.getByRole('button', { name: /^Change/ }).count(), 0);
    assert.equal(await jo.page.getByRole('textbox').count(), 0);
    await assertAccessible(jo.page, "the parent's board on a phone");
    await assertAccessible(chair.page, "the chair's board");

    // The wall shows every item under its heading.
    for (const text of [...worries, merged, 'The flat is cold']) {
      await wall.page.locator('.room-heading li', { hasText: text }).waitFor();
    }
    await screenshot(wall.page, 'room-view-1920x1080');
    await screenshot(jo.page, 'parent-phone-390x844');

    // The server is killed and started again: everyone reconnects and nothing is lost.
    await server.restart({ signal: 'SIGKILL' });
    for (const person of [chair, priya, jo, wall]) {
      await person.page.getByText('Connected', { exact: true }).waitFor({ timeout: 15_000 });
    }
    await chair.page.reload();
    await waitForItems(chair.page, WORRIES, worries, 'the chair after the restart');
    await waitForItems(chair.page, WORKING_WELL, [merged], 'the chair after the restart');
    await waitForItems(chair.page, 'Complicating factors', ['The flat is cold'], 'the chair after the restart');

    for (const person of [chair, priya, jo, wall]) {
      assert.deepEqual(person.problems, [], 'no errors in the browser');
    }
  });

  test("a professional's words written while cut off are kept through a reload and sent later", { timeout: 60_000 }, async (t) => {
    const chair = await openPage(browser, t, { viewport: LAPTOP });
    await startNewConference(chair.page, server);
    await chair.page.getByLabel('Title').fill('Jones family');
    await chair.page.getByLabel('Date', { exact: true }).fill('2030-05-06');
    await chair.page.locator('#child-0-name').fill('Kai');
    await chair.page.getByRole('button', { name: 'Add a person' }).click();
    await chair.page.locator('#person-1-name').fill('Dev Patel');
    await chair.page.locator('#person-1-role').selectOption('professional');
    await chair.page.getByRole('button', { name: 'Create the conference' }).click();
    const link = await chair.page.getByLabel('Personal link for Dev Patel').inputValue();
    await chair.page.getByRole('link', { name: 'Open the board' }).click();
    await chair.page.getByText('Connected', { exact: true }).waitFor();

    // The professional's laptop, whose connection we can cut: a cut-off socket
    // opens but reaches no server, as on a network that has stopped passing data.
    const dev = await openPage(browser, t, { viewport: LAPTOP });
    let cutOff = false;
    const sockets = [];
    await dev.page.routeWebSocket(/\/sync$/, (socket) => {
      sockets.push(socket);
      if (!cutOff) socket.connectToServer();
    });
    const reconnectAll = async () => {
      for (const socket of sockets.splice(0)) await socket.close();
    };
    await dev.page.goto(link);
    await dev.page.getByRole('link', { name: 'Open the board' }).click();
    await dev.page.getByText('Connected', { exact: true }).waitFor();

    cutOff = true;
    await reconnectAll();
    await dev.page.getByText('Reconnecting…', { exact: true }).waitFor();
    await addItem(dev.page, WORRIES, 'Kai has missed three health checks');
    await dev.page.getByText(/^Not saved yet/).waitFor();

    // A reload while still cut off keeps the words on the device.
    await dev.page.reload();
    await dev.page.getByText(/^Not saved yet/).waitFor();
    assert.deepEqual(await itemsUnder(chair.page, WORRIES), [], 'nothing reached the server while cut off');

    // Connected again: the words are sent, saved, and reach the chair.
    cutOff = false;
    await reconnectAll();
    await dev.page.getByText('All changes saved').waitFor({ timeout: 15_000 });
    await waitForItems(chair.page, WORRIES, ['Kai has missed three health checks'], 'the chair');
    await waitForItems(dev.page, WORRIES, ['Kai has missed three health checks'], 'the professional');
  });

  test('the room view keeps a full board on the screen by making the words smaller', { timeout: 60_000 }, async (t) => {
    const cookie = await signIn(server);
    const {
      conference,
      invited: [minutes],
    } = await createConference(server, cookie, {
      title: 'A long meeting',
      participants: [{ name: 'Ali Minutes', role: 'minute_taker' }],
    });
    const wall = await openPage(browser, t, { viewport: WALL });
    const [name, value] = cookie.split('=');
    await wall.context.addCookies([{ name, value, url: server.baseUrl }]);
    await wall.page.goto(`${server.baseUrl}/conference/${conference.id}/room`);
    await wall.page.getByText('Connected', { exact: true }).waitFor();
    const size = () =>
      wall.page.locator('.room-board').evaluate((board) => parseFloat(getComputedStyle(board).fontSize));
    const full = await size();

    // A stock Yjs client writes forty long items, as a busy meeting would.
    const ali = await connect(server, conference.id, { bearer: minutes.token });
    t.after(() => ali.close());
    ali.doc.transact(() => {
      for (let i = 0; i < 40; i++) {
        addItemByYjs(ali.doc, {
          id: `long-${i}`,
          heading: ['worries', 'complicating', 'working_well', 'next_steps'][i % 4],
          position: `8${String(i).padStart(2, '0')}`,
          text: `Item ${i}: something said at length about what has happened at home and at school`,
          author: minutes.participant.id,
        });
      }
    });
    await wall.page.locator('.room-heading li', { hasText: 'Item 39:' }).waitFor();
    await waitFor(
      () =>
        wall.page.locator('.room-heading').evaluateAll((columns) =>
          columns.every((c) => c.scrollHeight <= c.clientHeight + 1),
        ),
      { what: 'every heading to fit on the screen' },
    );
    assert.ok((await size()) < full, 'the words got smaller to fit');
    assert.deepEqual(wall.problems, []);
  });
});
