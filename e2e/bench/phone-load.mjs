// Benchmark: what a phone downloads, and how long it waits, to reach the voting
// page on a slow mobile connection.
//
// Chromium on a 390×844 screen with the network throttled through the DevTools
// protocol (Chrome's "Slow 4G" profile: 562.5 ms round trip, 1.44 Mbit/s down,
// 675 kbit/s up; and "Fast 4G": 165 ms, 9 Mbit/s, 1.5 Mbit/s). For each we measure,
// with an empty cache, the bytes on the wire (compressed, as the server sends them)
// and the time until the page can be used:
//   - following a parent's join link, then "Continue" to the scale page with a scale
//     open, until the eleven score buttons are there;
//   - the scale page opened directly (a phone that has joined before);
//   - the board, for comparison (a professional's laptop page).
//
// Usage (from e2e/, after scripts/build-client.sh and a release server build):
//   ROUNDTABLE_BIN=../target/release/roundtable node bench/phone-load.mjs [runs]
// Not part of the tests: it reports figures and asserts nothing about them.

import { launchChromium } from '../lib/browser.mjs';
import { createConference, expectStatus, signIn } from '../lib/api.mjs';
import { startServer } from '../lib/server.mjs';

const RUNS = Math.min(Number(process.argv[2] ?? 3), 10);
const PROFILES = {
  'Slow 4G': { latency: 562.5, downloadThroughput: (1.44e6 / 8) * 0.9, uploadThroughput: (675e3 / 8) * 0.9 },
  'Fast 4G': { latency: 165, downloadThroughput: (9e6 / 8) * 0.9, uploadThroughput: (1.5e6 / 8) * 0.9 },
};

/** A fresh phone with an empty cache and a throttled network; counts bytes received. */
async function phone(browser, profile) {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 } });
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.setCacheDisabled', { cacheDisabled: false });
  await cdp.send('Network.emulateNetworkConditions', { offline: false, ...PROFILES[profile] });
  const counter = { bytes: 0 };
  cdp.on('Network.loadingFinished', (event) => {
    counter.bytes += event.encodedDataLength;
  });
  return { context, page, counter };
}

async function timed(counter, action) {
  const bytesBefore = counter.bytes;
  const started = performance.now();
  await action();
  return { ms: performance.now() - started, bytes: counter.bytes - bytesBefore };
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

const server = await startServer({ label: 'bench-phone-load' });
const browser = await launchChromium();
try {
  const cookie = await signIn(server);
  const rows = [];
  for (const profile of Object.keys(PROFILES)) {
    const samples = { join: [], score: [], board: [] };
    for (let run = 0; run < RUNS; run++) {
      const { conference, invited } = await createConference(server, cookie, {
        participants: [
          { name: 'Jo Taylor', role: 'parent' },
          { name: 'Priya Shah', role: 'professional', agency: 'Health visiting' },
        ],
      });
      await expectStatus(201, server.baseUrl, 'POST', `/api/conferences/${conference.id}/scales`, {
        cookie,
        body: { subject: { kind: 'all_children' } },
      });
      const scoreUrl = `${server.baseUrl}/conference/${conference.id}/score`;

      // A parent's first visit: the join link, then on to the scale page.
      const jo = await phone(browser, profile);
      samples.join.push(
        await timed(jo.counter, async () => {
          await jo.page.goto(invited[0].join_link);
          await jo.page.getByRole('link', { name: 'Continue' }).click({ timeout: 60_000 });
          await jo.page.locator('label[for="score-10"]').waitFor({ timeout: 60_000 });
        }),
      );
      // The scale page on its own, with an empty cache.
      const again = await phone(browser, profile);
      await again.context.addCookies(await jo.context.cookies());
      samples.score.push(
        await timed(again.counter, async () => {
          await again.page.goto(scoreUrl);
          await again.page.locator('label[for="score-10"]').waitFor({ timeout: 60_000 });
        }),
      );
      // The board, for comparison.
      const board = await phone(browser, profile);
      await board.context.addCookies(await jo.context.cookies());
      samples.board.push(
        await timed(board.counter, async () => {
          await board.page.goto(`${server.baseUrl}/conference/${conference.id}`);
          await board.page.getByText('Connected', { exact: true }).waitFor({ timeout: 60_000 });
        }),
      );
      for (const opened of [jo, again, board]) await opened.context.close();
    }
    for (const [what, list] of Object.entries(samples)) {
      rows.push({
        network: profile,
        page: {
          join: 'join link → scale page, ready to score',
          score: 'scale page, ready to score',
          board: 'board, connected',
        }[what],
        'KB on the wire': +(median(list.map((s) => s.bytes)) / 1000).toFixed(1),
        'median ms': Math.round(median(list.map((s) => s.ms))),
      });
    }
  }
  console.log(`${RUNS} runs each, empty cache, 390×844`);
  console.table(rows);
  console.log(JSON.stringify(rows));
} finally {
  await browser.close();
  await server.stop();
}
