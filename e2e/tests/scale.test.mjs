// The safety scale in Debian's Chromium: the chair opens a scale from the board,
// five people score from phones (390×844), the room view's count rises without a
// reload, the chair closes and reveals, and every screen shows the same five
// scores and the chart. Before the reveal no score is in anyone's copy of the
// document, checked with a stock Yjs client for every participant.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { accessibilityViolations, launchChromium, openPage, screenshot } from '../lib/browser.mjs';
import { createConference, request, signIn } from '../lib/api.mjs';
import { startServer } from '../lib/server.mjs';
import { waitFor } from '../lib/wait.mjs';
import { connect } from '../lib/yjs.mjs';

const PHONE = { width: 390, height: 844 };
const LAPTOP = { width: 1366, height: 768 };
const WALL = { width: 1920, height: 1080 };

// Who scores, what, and why.
const VOTERS = [
  { name: 'Priya Shah', role: 'professional', agency: 'Health visiting', score: 4, why: 'Appointments are kept now' },
  { name: 'Jo Taylor', role: 'parent', score: 7, why: 'We have stopped arguing in front of Alex' },
  { name: 'Sam Taylor', role: 'parent', score: 6, why: '' },
  { name: 'Nan Taylor', role: 'carer', score: 8, why: 'Alex stays with me at weekends' },
  { name: 'Kai Okafor', role: 'advocate', score: 3, why: 'Alex still feels scared at night' },
];

async function assertAccessible(page, where) {
  assert.deepEqual(await accessibilityViolations(page), [], `accessibility problems on ${where}`);
}

/** A page whose browser context holds `cookie` as its session. */
async function pageWithSession(browser, t, server, cookie, viewport) {
  const opened = await openPage(browser, t, { viewport });
  const [name, value] = cookie.split('=');
  await opened.context.addCookies([{ name, value, url: server.baseUrl, httpOnly: true, sameSite: 'Strict' }]);
  return opened;
}

/** The revealed scores a screen shows, as "score who why" lines, in order. */
function shownScores(page) {
  return page.locator('.results').first().locator('ul.scores').first().locator('li').allInnerTexts();
}

describe('the safety scale from phones', { timeout: 150_000 }, () => {
  let server;
  let browser;

  before(async () => {
    server = await startServer({ label: 'scale' });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('five phones score in private, then everyone sees the same scores together', { timeout: 140_000 }, async (t) => {
    const cookie = await signIn(server);
    const { conference, invited } = await createConference(server, cookie, {
      title: 'Conference for Alex',
      participants: [
        ...VOTERS.map(({ name, role, agency }) => ({ name, role, agency })),
        // A supporter who will be asked to leave while the others score.
        { name: 'Lee Visitor', role: 'supporter' },
      ],
    });
    const boardUrl = `${server.baseUrl}/conference/${conference.id}`;

    // The chair runs the meeting from the board; the room view is on the wall.
    const chair = await pageWithSession(browser, t, server, cookie, LAPTOP);
    await chair.page.goto(boardUrl);
    await chair.page.getByText('Connected', { exact: true }).waitFor();
    const wall = await pageWithSession(browser, t, server, cookie, WALL);
    await wall.page.goto(`${boardUrl}/room`);
    await wall.page.getByText('Connected', { exact: true }).waitFor();

    // Everyone opens their link on a phone and lands on (or goes to) the scale page.
    const phones = [];
    for (const [i, voter] of VOTERS.entries()) {
      const phone = await openPage(browser, t, { viewport: PHONE });
      await phone.page.goto(invited[i].join_link);
      await phone.page.getByText(`Welcome, ${voter.name}.`).waitFor();
      await phone.page.goto(`${boardUrl}/score`);
      await phone.page.getByText('When the chair asks, you will give your score here.').waitFor();
      phones.push(phone);
    }
    await assertAccessible(phones[1].page, 'the scale page before a scale is open');
    const lee = await openPage(browser, t, { viewport: PHONE });
    await lee.page.goto(invited[VOTERS.length].join_link);
    await lee.page.getByText('Welcome, Lee Visitor.').waitFor();
    await lee.page.goto(`${boardUrl}/score`);
    await lee.page.getByText('When the chair asks, you will give your score here.').waitFor();

    // The chair moves the meeting to the safety scale and opens one about Alex,
    // with the default words.
    await chair.page.getByLabel('Stage of the meeting').selectOption('scaling');
    await chair.page.getByRole('button', { name: 'Move the meeting on' }).click();
    await wall.page.locator('.room-header .phase', { hasText: 'Safety scale' }).waitFor();
    await chair.page.getByLabel('What is scored').selectOption({ label: 'Alex' });
    await chair.page.getByRole('button', { name: 'Open the scale' }).click();
    await wall.page.getByText('0 of 7 people have scored').waitFor();

    // Each phone shows the question in its own words and takes a score.
    for (const [i, voter] of VOTERS.entries()) {
      const { page } = phones[i];
      const question = voter.role === 'professional'
        ? 'On a scale of 0 to 10, how safe is Alex now?'
        : 'How safe do you think Alex is now, from 0 to 10?';
      await page.getByRole('heading', { level: 1, name: question }).waitFor();
      if (voter.role !== 'professional') await page.getByText('Not safe at all').waitFor();
      await page.locator(`label[for="score-${voter.score}"]`).click();
      if (voter.why) await page.getByLabel('Why did you choose this number?').fill(voter.why);
      if (i === VOTERS.length - 1) {
        // The chair asks Lee to leave before this phone sends: every phone's page is
        // told the scales changed, and what is chosen and typed here stays.
        const removed = await request(server.baseUrl, 'DELETE', `/api/conferences/${conference.id}/participants/${invited[VOTERS.length].participant.id}`, { cookie });
        assert.equal(removed.status, 204);
        await lee.page.getByText('You are no longer in this conference.').waitFor();
        await wall.page.getByText(`${i} of 6 people have scored`).waitFor();
        await page.waitForTimeout(300);
        assert.equal(await page.locator(`#score-${voter.score}`).isChecked(), true);
        assert.equal(await page.getByLabel('Why did you choose this number?').inputValue(), voter.why);
      }
      if (i === 1) await assertAccessible(page, 'the scale page with a scale open');
      await page.getByRole('button', { name: 'Send my score' }).click();
      await page.getByText(`Sent. Your score is ${voter.score}.`).waitFor();
      if (i === 1) await screenshot(page, 'scale-phone-390x844');
      // The wall's count rises without a reload.
      const voters = i < VOTERS.length - 1 ? 7 : 6;
      await wall.page.getByText(`${i + 1} of ${voters} people have scored`).waitFor();
    }
    // A change of mind is still one score.
    await phones[2].page.locator('label[for="score-5"]').click();
    await phones[2].page.getByRole('button', { name: 'Send my new score' }).click();
    await phones[2].page.getByText('Sent. Your score is 5.').waitFor();
    VOTERS[2].score = 5;
    await chair.page.getByText('5 of 6 people have scored').first().waitFor();

    // Before the reveal, nobody's copy of the document holds a score or a reason.
    const secrets = VOTERS.map((v) => v.why).filter(Boolean);
    const copies = [await connect(server, conference.id, { cookie })];
    for (const person of invited.slice(0, VOTERS.length)) {
      copies.push(await connect(server, conference.id, { bearer: person.token }));
    }
    try {
      for (const copy of copies) {
        const scales = copy.doc.getMap('scales').toJSON();
        const [scale] = Object.values(scales);
        assert.equal(scale.scored, 5);
        assert.equal(scale.status, 'open');
        assert.equal(scale.results, undefined);
        const everything = JSON.stringify(copy.doc.toJSON());
        for (const secret of secrets) assert.ok(!everything.includes(secret), `"${secret}" leaked`);
      }
    } finally {
      for (const copy of copies) copy.close();
    }
    // Nor does any screen show anyone else's.
    for (const page of [chair.page, wall.page, ...phones.map((p) => p.page)]) {
      const text = await page.locator('body').innerText();
      for (const secret of secrets) assert.ok(!text.includes(secret), `"${secret}" shown early`);
    }

    // The chair closes the scale, then shows everyone's scores.
    await chair.page.getByRole('button', { name: 'Close the scale' }).click();
    await phones[0].page.getByText('Scoring has finished.').first().waitFor();
    await chair.page.getByRole('button', { name: 'Show everyone’s scores' }).click();

    const expected = VOTERS.map((v) => String(v.score));
    const screens = [chair, wall, ...phones];
    let first;
    for (const screen of screens) {
      await waitFor(async () => (await shownScores(screen.page)).length === 5, {
        what: 'five scores on every screen',
        timeoutMs: 10_000,
      });
      const lines = await shownScores(screen.page);
      assert.deepEqual(lines.map((l) => l.trim().split(/\s+/)[0]), expected);
      first ??= lines;
      assert.deepEqual(lines, first, 'every screen shows the same scores');
      const chart = screen.page.locator('figure.chart').first();
      assert.match(await chart.getAttribute('aria-label'), /1 person scored 3, 1 person scored 4, 1 person scored 5/);
      await screen.page.getByText('5 scores. Middle score 5, from 3 to 8').first().waitFor();
    }
    assert.ok(first.some((line) => line.includes('We have stopped arguing in front of Alex')));
    assert.ok(first.some((line) => line.includes('Jo Taylor (parent)')));
    await assertAccessible(phones[1].page, 'the revealed scores on a phone');
    await assertAccessible(chair.page, 'the board with revealed scores');
    await screenshot(phones[1].page, 'scale-revealed-phone-390x844');
    await screenshot(wall.page, 'scale-revealed-room-view-1920x1080');

    // After the reveal a score can no longer be changed.
    const late = await request(server.baseUrl, 'PUT', `/api/conferences/${conference.id}/scales/${(await request(server.baseUrl, 'GET', `/api/conferences/${conference.id}/scales`, { cookie })).body.scales[0].id}/vote`, {
      bearer: invited[1].token,
      body: { score: 10 },
    });
    assert.equal(late.status, 409);

    for (const screen of screens) assert.deepEqual(screen.problems, []);
  });
});
