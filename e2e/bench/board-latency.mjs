// Benchmark: the time from an edit in one browser to its appearance in another.
//
// The chair and a professional have the same board open in two Chromium pages.
// The chair adds an item (or types a word into one) N times; for each edit we
// take the time just before the browser handles the key press in the chair's
// page, and the time the professional's page has drawn the new words (a
// MutationObserver there notes it). Both pages run in one browser on one machine,
// so their clocks (performance.timeOrigin + performance.now()) agree.
//
// Usage (from e2e/, after scripts/build-client.sh and a server build):
//   ROUNDTABLE_BIN=../target/release/roundtable node bench/board-latency.mjs [edits]
// Not part of the tests: it reports figures and asserts nothing about them.

import { launchChromium } from '../lib/browser.mjs';
import { createConference, signIn } from '../lib/api.mjs';
import { startServer } from '../lib/server.mjs';
import { waitFor } from '../lib/wait.mjs';

const EDITS = Math.min(Number(process.argv[2] ?? 50), 500);
const WORRIES = 'What are we worried about?';

function summary(name, samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return {
    name,
    edits: sorted.length,
    median_ms: +at(0.5).toFixed(2),
    p95_ms: +at(0.95).toFixed(2),
    max_ms: +sorted[sorted.length - 1].toFixed(2),
  };
}

/** Notes, in the watching page, when each marker first appears on the board. */
async function watch(page) {
  await page.evaluate(() => {
    globalThis.seen = {};
    const look = () => {
      for (const element of document.querySelectorAll('.item-text')) {
        for (const marker of element.textContent.match(/m\d+x/g) ?? []) {
          globalThis.seen[marker] ??= performance.timeOrigin + performance.now();
        }
      }
    };
    new MutationObserver(look).observe(document.body, {
      subtree: true,
      childList: true,
      characterData: true,
    });
  });
}

async function seenAt(page, marker) {
  return waitFor(() => page.evaluate((m) => globalThis.seen[m], marker), {
    what: `${marker} on the other screen`,
    timeoutMs: 10_000,
    everyMs: 2,
  });
}

const server = await startServer({ label: 'bench-latency' });
const browser = await launchChromium();
try {
  const cookie = await signIn(server);
  const {
    conference,
    invited: [priya],
  } = await createConference(server, cookie, {
    title: 'Latency',
    participants: [{ name: 'Priya Shah', role: 'professional', agency: 'Health visiting' }],
  });
  const boardUrl = `${server.baseUrl}/conference/${conference.id}`;

  const chairContext = await browser.newContext();
  const [name, value] = cookie.split('=');
  await chairContext.addCookies([{ name, value, url: server.baseUrl }]);
  const chair = await chairContext.newPage();
  await chair.goto(boardUrl);
  await chair.getByText('Connected', { exact: true }).waitFor();

  const other = await (await browser.newContext()).newPage();
  await other.goto(priya.join_link);
  await other.getByRole('link', { name: 'Open the board' }).click();
  await other.getByText('Connected', { exact: true }).waitFor();
  await watch(other);

  // New items: the form under a heading.
  const added = [];
  for (let i = 0; i < EDITS; i++) {
    const marker = `m${i}x`;
    const sent = await chair.evaluate(
      ({ label, text }) => {
        const field = [...document.querySelectorAll('label')]
          .find((l) => l.textContent === label)
          ?.control;
        field.value = text;
        field.dispatchEvent(new Event('input', { bubbles: true }));
        const at = performance.timeOrigin + performance.now();
        field.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true }));
        return at;
      },
      { label: `Add to “${WORRIES}”`, text: `Item ${marker}` },
    );
    added.push((await seenAt(other, marker)) - sent);
  }

  // Typing: one word at a time into the text of an item being changed.
  await chair.getByRole('button', { name: 'Change “Item m0x”' }).click();
  const typed = [];
  for (let i = 0; i < EDITS; i++) {
    const marker = `m${EDITS + i}x`;
    const sent = await chair.evaluate((word) => {
      const area = document.activeElement;
      area.value += ` ${word}`;
      const at = performance.timeOrigin + performance.now();
      area.dispatchEvent(new Event('input', { bubbles: true }));
      return at;
    }, marker);
    typed.push((await seenAt(other, marker)) - sent);
  }

  const results = [summary('new item, chair → professional', added), summary('typing in an item, chair → professional', typed)];
  console.table(results);
  console.log(JSON.stringify(results));
} finally {
  await browser.close();
  await server.stop();
}
