// Drafting the plan in Debian's Chromium: the chair and the minute-taker write it
// together on their laptops, typing into the same field at once, and both keep
// their words; a parent on a phone reads it as it is written and can change nothing.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { accessibilityViolations, launchChromium, openPage } from '../lib/browser.mjs';
import { createConference, signIn } from '../lib/api.mjs';
import { startServer } from '../lib/server.mjs';
import { waitFor } from '../lib/wait.mjs';

const LAPTOP = { width: 1366, height: 768 };
const PHONE = { width: 390, height: 844 };

describe('the plan', { timeout: 120_000 }, () => {
  let server;
  let browser;

  before(async () => {
    server = await startServer({ label: 'plan' });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('the chair and the minute-taker draft the plan together; the family reads it', { timeout: 110_000 }, async (t) => {
    const cookie = await signIn(server);
    const { conference, invited } = await createConference(server, cookie, {
      title: 'Conference for Alex',
      participants: [
        { name: 'Mo Minutes', role: 'minute_taker' },
        { name: 'Jo Taylor', role: 'parent' },
        { name: 'Priya Shah', role: 'professional', agency: 'Health visiting' },
      ],
    });
    const boardUrl = `${server.baseUrl}/conference/${conference.id}`;

    const chair = await openPage(browser, t, { viewport: LAPTOP });
    const [name, value] = cookie.split('=');
    await chair.context.addCookies([{ name, value, url: server.baseUrl }]);
    await chair.page.goto(boardUrl);
    await chair.page.getByText('Connected', { exact: true }).waitFor();

    const mo = await openPage(browser, t, { viewport: LAPTOP });
    await mo.page.goto(invited[0].join_link);
    await mo.page.getByRole('link', { name: 'Open the board' }).click();
    await mo.page.getByText('Connected', { exact: true }).waitFor();

    const jo = await openPage(browser, t, { viewport: PHONE });
    await jo.page.goto(invited[1].join_link);
    await jo.page.getByRole('link', { name: 'Continue' }).click();
    await jo.page.getByRole('link', { name: 'See the board' }).click();
    await jo.page.getByText('Connected', { exact: true }).waitFor();

    // A danger statement from the chair, its safety goal from the minute-taker.
    await chair.page.getByRole('button', { name: 'Add a danger statement' }).click();
    const statement = 'Children’s social care are worried that Alex could be hurt when Dad drinks.';
    await chair.page.getByLabel(/^Danger statement 1/).fill(statement);
    const goal = 'Alex is looked after by a sober adult at all times.';
    await mo.page.getByLabel('Safety goal 1').fill(goal);
    await waitFor(async () => (await chair.page.getByLabel('Safety goal 1').inputValue()) === goal, {
      what: "the minute-taker's goal on the chair's screen",
    });

    // Both type into the contingency plan at the same time, and both keep their words.
    const contingencyChair = chair.page.getByLabel('What will happen if the plan is not followed');
    const contingencyMo = mo.page.getByLabel('What will happen if the plan is not followed');
    await contingencyChair.click();
    await contingencyMo.click();
    const fromChair = 'Nan will look after Alex.';
    const fromMo = 'Mum will call the police.';
    await Promise.all([
      contingencyChair.pressSequentially(fromChair, { delay: 15 }),
      contingencyMo.pressSequentially(fromMo, { delay: 15 }),
    ]);
    let agreed;
    await waitFor(async () => {
      const [a, b] = [await contingencyChair.inputValue(), await contingencyMo.inputValue()];
      agreed = a;
      return a === b && a.includes(fromChair) && a.includes(fromMo);
    }, { what: 'both sentences in both copies of the contingency plan', timeoutMs: 10_000 });
    assert.equal(agreed.length, fromChair.length + fromMo.length);

    // The minute-taker adds an action: what, who, by when, how we will know.
    await mo.page.getByRole('button', { name: 'Add an action' }).click();
    await mo.page.getByLabel('Action 1: what needs to happen').fill('Dad goes to the alcohol service every week');
    await mo.page.getByLabel('Who will do it').selectOption({ label: 'Priya Shah' });
    await mo.page.getByLabel('By when').fill('2030-04-15');
    await mo.page.getByLabel('How we will know it has happened').fill('The service writes to the social worker');
    await waitFor(async () => (await chair.page.getByLabel('By when').inputValue()) === '2030-04-15', {
      what: "the action's date on the chair's screen",
    });
    assert.equal(await chair.page.getByLabel('Who will do it').inputValue().then((v) => v.startsWith('participant:')), true);

    // The parent reads it all, live, and has nothing to change it with.
    const plan = jo.page.getByRole('region', { name: 'The plan' });
    await plan.getByText(goal).waitFor();
    await plan.getByText('Dad goes to the alcohol service every week').waitFor();
    await plan.getByText(/Who: Priya Shah \(Health visiting\)/).waitFor();
    await plan.getByText(fromChair, { exact: false }).waitFor();
    assert.equal(await plan.locator('textarea, input, select, button').count(), 0);

    assert.deepEqual(await accessibilityViolations(chair.page), [], 'accessibility problems on the plan');
    assert.deepEqual(await accessibilityViolations(jo.page), [], "accessibility problems on the parent's plan");
    for (const screen of [chair, mo, jo]) assert.deepEqual(screen.problems, []);
  });
});
