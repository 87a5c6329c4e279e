// Waiting on a condition with a deadline: the only way the tests synchronise.

/**
 * Resolves with the first truthy value `check()` returns; rejects after `timeoutMs`,
 * naming `what` was awaited. `check` may be async.
 */
export async function waitFor(check, { what = 'the condition', timeoutMs = 5_000, everyMs = 10 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let lastError;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const detail = lastError ? ` (last error: ${lastError.message})` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
    }
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
