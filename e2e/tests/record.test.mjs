// The end of a conference in Debian's Chromium: the chair and the minute-taker
// draft the plan, the chair records who is present (the conference becomes
// quorate), the decision for two children, and closes the conference. The record
// is printed to PDF by Chromium, and the PDF's text holds the decisions, their
// categories, the actions and the dates of the next meetings.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { getDocument } from 'pdfjs-dist/legacy/build/pdf.mjs';

import { accessibilityViolations, launchChromium, openPage } from '../lib/browser.mjs';
import { expectStatus, request, signIn } from '../lib/api.mjs';
import { artifactsDir, startServer } from '../lib/server.mjs';
import { waitFor } from '../lib/wait.mjs';

const LAPTOP = { width: 1366, height: 768 };

/** Every line of text in a PDF, page after page. */
async function pdfText(bytes) {
  const pdf = await getDocument({ data: new Uint8Array(bytes), useSystemFonts: false }).promise;
  const pages = [];
  for (let n = 1; n <= pdf.numPages; n++) {
    const content = await (await pdf.getPage(n)).getTextContent();
    pages.push(content.items.map((item) => item.str + (item.hasEOL ? '\n' : '')).join(''));
  }
  return { pages: pdf.numPages, text: pages.join('\n') };
}

describe('the record', { timeout: 150_000 }, () => {
  let server;
  let browser;

  before(async () => {
    server = await startServer({ label: 'record' });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('decisions for two children, closed, and printed with everything in it', { timeout: 140_000 }, async (t) => {
    const cookie = await signIn(server);
    const { body } = await expectStatus(201, server.baseUrl, 'POST', '/api/conferences', {
      cookie,
      body: {
        title: 'Taylor children',
        kind: 'initial',
        scheduled_start: '2030-03-04T10:00:00+00:00',
        children: [{ name: 'Alex' }, { name: 'Sam' }],
        participants: [
          { name: 'Mo Minutes', role: 'minute_taker' },
          { name: 'Jo Taylor', role: 'parent' },
          { name: 'Priya Shah', role: 'professional', agency: "Children's social care" },
          { name: 'PC Ray Hill', role: 'professional', agency: 'Police' },
          { name: 'Dr Ann Lee', role: 'professional', agency: 'GP surgery' },
        ],
      },
    });
    const id = body.conference.id;
    const [mo, jo, priya, ray, ann] = body.participants;
    const boardUrl = `${server.baseUrl}/conference/${id}`;

    const chair = await openPage(browser, t, { viewport: LAPTOP });
    const [name, value] = cookie.split('=');
    await chair.context.addCookies([{ name, value, url: server.baseUrl }]);
    await chair.page.goto(boardUrl);
    await chair.page.getByText('Connected', { exact: true }).waitFor();
    const minutes = await openPage(browser, t, { viewport: LAPTOP });
    await minutes.page.goto(mo.join_link);
    await minutes.page.getByRole('link', { name: 'Open the board' }).click();
    await minutes.page.getByText('Connected', { exact: true }).waitFor();

    // The plan: a danger statement from the chair, an action from the minute-taker.
    await chair.page.getByRole('button', { name: 'Add a danger statement' }).click();
    await chair.page.getByLabel(/^Danger statement 1/).fill('We are worried Alex and Sam could be hurt when Dad drinks.');
    await chair.page.getByLabel('Safety goal 1').fill('A sober adult looks after the children at all times.');
    await minutes.page.getByRole('button', { name: 'Add an action' }).click();
    await minutes.page.getByLabel('Action 1: what needs to happen').fill('Dad goes to the alcohol service every week');
    await minutes.page.getByLabel('or an agency').fill('Change Grow Live');
    await minutes.page.getByLabel('or an agency').press('Tab');
    await minutes.page.getByLabel('By when').fill('2030-04-15');
    await minutes.page.getByLabel('How we will know it has happened').fill('The service writes to Priya');
    await waitFor(async () => (await chair.page.getByLabel('By when').inputValue()) === '2030-04-15', {
      what: "the action on the chair's screen",
    });

    // Who is present: social care and two other agencies make it quorate.
    await chair.page.locator('summary', { hasText: 'Attendance' }).click();
    await chair.page.getByText('Record who is present to see whether the conference is quorate.').waitFor();
    for (const person of [priya, ray, ann, jo]) {
      const label = person.participant.agency ? `${person.participant.name} (${person.participant.agency})` : `${person.participant.name} (parent)`;
      await chair.page.getByLabel(label).selectOption('present');
    }
    await chair.page.getByText('Quorate: children’s social care and 2 other agencies are present.').waitFor();

    // The decisions: a child protection plan for Alex, a child in need plan for Sam.
    const alex = chair.page.getByRole('group', { name: 'Decision for Alex' });
    await alex.getByLabel('Child protection plan').check();
    const alexForm = chair.page.locator('form.decision-form').filter({ has: alex });
    await alexForm.getByLabel('Neglect').check();
    await alexForm.getByLabel('Emotional abuse').check();
    await alexForm.getByLabel('Lead social worker').fill('Priya Shah');
    await alexForm.getByLabel(/Each agency’s view/).fill('Police: agree with a plan\nGP surgery: a child in need plan would be enough');
    await alexForm.getByLabel(/Anyone who disagrees/).fill('Dr Ann Lee: the family is already engaging');
    await alexForm.getByRole('button', { name: 'Record the decision for Alex' }).click();
    await alexForm.getByText('Decision for Alex recorded.').waitFor();
    const samForm = chair.page.locator('form.decision-form').filter({ has: chair.page.getByRole('group', { name: 'Decision for Sam' }) });
    await samForm.getByLabel('Child in need plan').check();
    await samForm.getByRole('button', { name: 'Record the decision for Sam' }).click();
    await samForm.getByText('Decision for Sam recorded.').waitFor();

    // Everyone sees the decisions on the board.
    const shown = minutes.page.getByRole('region', { name: 'The decision' });
    await shown.getByText('Alex: Child protection plan: emotional abuse, neglect').waitFor();
    await shown.getByText('Sam: Child in need plan').waitFor();
    // The proposed dates: 10 working days and 3 months after Monday 4 March 2030.
    await shown.getByText('18 March 2030').waitFor();
    await shown.getByText('4 June 2030').waitFor();

    // A category without a child protection plan is refused, and changes nothing.
    const refused = await request(server.baseUrl, 'PUT', `/api/conferences/${id}/decisions/${body.conference.children[1].id}`, {
      cookie,
      body: { outcome: 'child_in_need_plan', categories: ['neglect'] },
    });
    assert.equal(refused.status, 422);

    // The chair closes the conference; nothing more can be changed on the board.
    await chair.page.getByRole('button', { name: 'Close the conference' }).click();
    await minutes.page.getByText('The chair has closed this conference.', { exact: false }).waitFor();
    const reopenByMo = await request(server.baseUrl, 'POST', `/api/conferences/${id}/reopen`, { bearer: mo.token });
    assert.equal(reopenByMo.status, 403);

    // The record, on screen and printed to A4.
    const record = await openPage(browser, t, { viewport: LAPTOP });
    await record.context.addCookies([{ name, value, url: server.baseUrl }]);
    await record.page.goto(`${boardUrl}/record`);
    await record.page.getByRole('heading', { level: 1, name: 'Record of the conference: Taylor children' }).waitFor();
    assert.deepEqual(await accessibilityViolations(record.page), [], 'accessibility problems on the record');
    const pdf = await record.page.pdf({ format: 'A4', path: `${artifactsDir}/record.pdf` });
    const { text, pages } = await pdfText(pdf);
    const flat = text.replace(/\s+/g, ' ');
    for (const expected of [
      'Record of the conference: Taylor children',
      'Child protection plan: emotional abuse, neglect',
      'Child in need plan',
      'Lead social worker: Priya Shah',
      'Police: agree with a plan',
      'Dr Ann Lee: the family is already engaging',
      'Dad goes to the alcohol service every week',
      'Change Grow Live',
      '15 April 2030',
      'First core group by 18 March 2030',
      'Review conference by 4 June 2030',
      'A sober adult looks after the children at all times.',
      'Confidential',
      `Page 1 of ${pages}`,
    ]) {
      assert.ok(flat.includes(expected), `the printed record should say "${expected}"`);
    }

    // The draft letter to the family.
    await record.page.goto(`${boardUrl}/letter`);
    await record.page.getByText('Alex will have a child protection plan.', { exact: false }).waitFor();
    await record.page.getByText('Dear Jo Taylor,').waitFor();
    assert.deepEqual(await accessibilityViolations(record.page), [], 'accessibility problems on the letter');

    // The audit log shows who did what.
    await record.page.goto(`${boardUrl}/audit`);
    await record.page.getByRole('cell', { name: 'conference closed' }).waitFor();
    await record.page.getByRole('cell', { name: 'decision recorded' }).first().waitFor();

    for (const screen of [chair, minutes, record]) assert.deepEqual(screen.problems, []);
  });
});
