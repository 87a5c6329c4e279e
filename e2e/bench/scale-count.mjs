// Benchmark: 50 phones give their safety scores within one second; how long until
// every connected screen shows the count.
//
// Each round the chair opens a scale, then 50 participants send their scores over
// HTTP (`PUT …/vote`, as the phone page does), spread evenly over one second. The
// screens are stock Yjs clients following the shared document (as the board and
// the room view do) and one room view in Chromium. For every score we take the
// time it was sent and the time the last screen showed a count that includes it;
// and for the round, the time from the last score sent until every screen shows 50.
// All clocks are this machine's (performance.timeOrigin + performance.now()).
//
// Usage (from e2e/, after scripts/build-client.sh and a release server build):
//   ROUNDTABLE_BIN=../target/release/roundtable node bench/scale-count.mjs [rounds]
// Not part of the tests: it reports figures and asserts nothing about them.

import { performance } from 'node:perf_hooks';

import { launchChromium } from '../lib/browser.mjs';
import { createConference, expectStatus, signIn } from '../lib/api.mjs';
import { startServer } from '../lib/server.mjs';
import { waitFor } from '../lib/wait.mjs';
import { connect } from '../lib/yjs.mjs';

const ROUNDS = Math.min(Number(process.argv[2] ?? 5), 20);
const PHONES = 50;
const YJS_SCREENS = 10;
const SPREAD_MS = 1000;

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

function quantiles(samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return { p50: +at(0.5).toFixed(1), p95: +at(0.95).toFixed(1), max: +sorted.at(-1).toFixed(1) };
}

/** Notes, on a Yjs screen, when each count was first shown. */
function follow(copy) {
  const shown = new Map(); // scale id → [[time, count], ...]
  const look = () => {
    const at = now();
    for (const [id, scale] of copy.doc.getMap('scales').entries()) {
      const count = scale.get('scored');
      const list = shown.get(id) ?? [];
      if (list.at(-1)?.[1] !== count) list.push([at, count]);
      shown.set(id, list);
    }
  };
  copy.doc.getMap('scales').observeDeep(look);
  look();
  return shown;
}

/** When a screen first showed at least `count` for `scale`. */
function shownAt(shown, scale, count) {
  return (shown.get(scale) ?? []).find(([, n]) => n >= count)?.[0];
}

const server = await startServer({ label: 'bench-scale' });
const browser = await launchChromium();
const screens = [];
try {
  const cookie = await signIn(server);
  const people = Array.from({ length: PHONES }, (_, i) => ({ name: `Person ${i + 1}`, role: i % 2 ? 'parent' : 'professional', agency: i % 2 ? undefined : 'Health visiting' }));
  people.push({ name: 'Wall', role: 'room_display' });
  const { conference, invited } = await createConference(server, cookie, { title: 'Scale benchmark', participants: people });
  const base = `/api/conferences/${conference.id}`;
  const wallToken = invited.at(-1).token;

  for (let i = 0; i < YJS_SCREENS; i++) {
    screens.push(await connect(server, conference.id, i % 2 ? { bearer: wallToken } : { cookie }));
  }
  const followed = screens.map(follow);

  // The room view on the wall, in Chromium, noting when its count changes.
  const wallContext = await browser.newContext({ viewport: { width: 1920, height: 1080 } });
  const [name, value] = cookie.split('=');
  await wallContext.addCookies([{ name, value, url: server.baseUrl }]);
  const wall = await wallContext.newPage();
  await wall.goto(`${server.baseUrl}/conference/${conference.id}/room`);
  await wall.getByText('Connected', { exact: true }).waitFor();
  await expectStatus(200, server.baseUrl, 'POST', `${base}/phase`, { cookie, body: { phase: 'scaling' } });
  await wall.evaluate(() => {
    globalThis.counts = [];
    new MutationObserver(() => {
      const text = document.querySelector('.room-count')?.textContent ?? '';
      const count = Number(text.match(/^(\d+) of/)?.[1]);
      if (Number.isFinite(count) && globalThis.counts.at(-1)?.[1] !== count) {
        globalThis.counts.push([performance.timeOrigin + performance.now(), count]);
      }
    }).observe(document.body, { subtree: true, childList: true, characterData: true });
  });

  const perScore = [];
  const rounds = [];
  for (let round = 0; round < ROUNDS; round++) {
    const { body: scale } = await expectStatus(201, server.baseUrl, 'POST', `${base}/scales`, {
      cookie,
      body: { subject: { kind: 'all_children' } },
    });
    await wall.evaluate(() => {
      globalThis.counts = [];
    });
    await waitFor(() => followed.every((shown) => shown.has(scale.id)), { what: 'the scale on every screen' });

    const start = now() + 50;
    const sent = [];
    const answers = await Promise.all(
      invited.slice(0, PHONES).map(async (person, i) => {
        await sleep(start + (i * SPREAD_MS) / PHONES - now());
        sent[i] = now();
        const response = await fetch(`${server.baseUrl}${base}/scales/${scale.id}/vote`, {
          method: 'PUT',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${person.token}` },
          body: JSON.stringify({ score: i % 11 }),
        });
        if (response.status !== 200) throw new Error(`vote ${i}: ${response.status}`);
        return (await response.json()).scored;
      }),
    );
    await waitFor(() => followed.every((shown) => shownAt(shown, scale.id, PHONES) !== undefined), {
      what: 'the final count on every Yjs screen',
      timeoutMs: 20_000,
    });
    await wall.getByText(`${PHONES} of ${PHONES + 1} people have scored`).waitFor({ timeout: 20_000 });
    const wallCounts = await wall.evaluate(() => globalThis.counts);

    // Each score: from sending it until the last screen showed a count including it.
    for (const [i, scored] of answers.entries()) {
      const yjsLast = Math.max(...followed.map((shown) => shownAt(shown, scale.id, scored)));
      const wallAt = wallCounts.find(([, n]) => n >= scored)?.[0] ?? yjsLast;
      perScore.push(Math.max(yjsLast, wallAt) - sent[i]);
    }
    const lastSent = Math.max(...sent);
    const allShown = Math.max(
      ...followed.map((shown) => shownAt(shown, scale.id, PHONES)),
      wallCounts.find(([, n]) => n >= PHONES)[0],
    );
    rounds.push(allShown - lastSent);

    await expectStatus(200, server.baseUrl, 'POST', `${base}/scales/${scale.id}/close`, { cookie });
    await expectStatus(200, server.baseUrl, 'POST', `${base}/scales/${scale.id}/reveal`, { cookie });
  }

  const result = {
    phones: PHONES,
    screens: YJS_SCREENS + 1,
    rounds: ROUNDS,
    last_score_to_every_screen_ms: quantiles(rounds),
    each_score_to_every_screen_ms: quantiles(perScore),
  };
  console.log(`50 scores within ${SPREAD_MS} ms, ${YJS_SCREENS} Yjs screens + 1 Chromium room view, ${ROUNDS} rounds`);
  console.table({
    'last score sent → final count on every screen': result.last_score_to_every_screen_ms,
    'each score sent → on every screen': result.each_score_to_every_screen_ms,
  });
  console.log(JSON.stringify(result));
} finally {
  for (const screen of screens) screen.close();
  await browser.close();
  await server.stop();
}
