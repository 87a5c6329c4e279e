// Debian's Chromium, driven by playwright-core. Playwright's own browser builds are
// not used (they cannot be downloaded here); `CHROMIUM` overrides the path.

import fs from 'node:fs/promises';
import path from 'node:path';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

import { artifactsDir } from './server.mjs';

export const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';

export function launchChromium() {
  return chromium.launch({
    executablePath: chromiumPath,
    timeout: 30_000,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
}

/**
 * A fresh browser context and page with short timeouts. Collects uncaught page
 * errors and console errors into `problems`, for the test to assert on. `viewport`
 * is the window's size (a phone is `{ width: 390, height: 844 }`).
 */
export async function openPage(browser, t, { viewport = { width: 1024, height: 768 } } = {}) {
  const context = await browser.newContext({ viewport });
  t.after(() => context.close());
  context.setDefaultTimeout(10_000);
  context.setDefaultNavigationTimeout(15_000);
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    // A 401 from `GET /api/me` before signing in is expected, and Chromium reports
    // every failed request as a console error; anything else is a problem.
    if (message.type() === 'error' && !/status of 401/.test(message.text())) {
      problems.push(`console error: ${message.text()}`);
    }
  });
  return { context, page, problems };
}

export async function screenshot(page, name) {
  await fs.mkdir(artifactsDir, { recursive: true });
  const file = path.join(artifactsDir, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

const require = createRequire(import.meta.url);
let axeSource;

/**
 * Runs axe-core's WCAG 2.2 A and AA rules on the page; resolves to the violations,
 * each as one readable line. The page's Content Security Policy forbids injected
 * script tags, so axe is evaluated through the DevTools protocol, which the policy
 * does not govern.
 */
export async function accessibilityViolations(page) {
  axeSource ??= await fs.readFile(require.resolve('axe-core/axe.min.js'), 'utf8');
  await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    const result = await globalThis.axe.run(document, {
      runOnly: {
        type: 'tag',
        values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'],
      },
    });
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      targets: v.nodes.map((n) => n.target.join(' ')),
    }));
  });
  return violations.map(
    (v) => `${v.id} (${v.impact}): ${v.help} — at ${v.targets.join(', ')}`,
  );
}
