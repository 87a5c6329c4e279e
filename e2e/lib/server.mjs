// Starts the real `roundtable` binary for a test, and always stops it again.
//
// Each server gets a fresh data directory, a free port on 127.0.0.1 and a chair
// account. Its log goes to e2e/artifacts/<label>-server.log, so a failing test can
// be read afterwards. Nothing here sleeps to synchronise: start-up waits for
// `/health` to answer, and stopping waits for the process to exit, each with a
// deadline.

import { spawn, execFile } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const e2eDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const artifactsDir = path.join(e2eDir, 'artifacts');

/** The binary under test: `ROUNDTABLE_BIN`, or the debug build of the workspace. */
export const binaryPath = path.resolve(
  e2eDir,
  process.env.ROUNDTABLE_BIN ?? '../target/debug/roundtable',
);
/** The built browser client the server serves. */
export const clientDir = path.resolve(
  e2eDir,
  process.env.ROUNDTABLE_CLIENT_DIR ?? '../client/dist',
);

export const defaultChair = Object.freeze({
  email: 'chair@example.org',
  name: 'Sam Chair',
  password: 'a long password for tests',
});

/** Every server still running, so an abrupt end of the test process kills them too. */
const running = new Map(); // child process → its data directory
const killAll = () => {
  for (const [child, dataDir] of running) {
    child.kill('SIGKILL');
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
};
process.on('exit', killAll);
// A signal ends Node without the 'exit' event: kill the servers, then die of it as usual.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(signal, () => {
    killAll();
    process.kill(process.pid, signal);
  });
}

/**
 * Starts a server and creates its chair. Resolves once `/health` answers.
 *
 * @param {object} [options]
 * @param {string} [options.label] names the log file in e2e/artifacts/
 * @param {{email: string, name: string, password: string}} [options.chair]
 * @param {number} [options.startTimeoutMs] deadline for the server to answer
 * @param {Record<string, string>} [options.env] extra environment variables for
 *   `roundtable serve`, e.g. `{ ROUNDTABLE_LOG: 'trace' }`
 */
export async function startServer({
  label = 'server',
  chair = defaultChair,
  startTimeoutMs = 20_000,
  env = {},
} = {}) {
  await fsp.access(binaryPath, fs.constants.X_OK).catch(() => {
    throw new Error(
      `no roundtable binary at ${binaryPath}: run \`cargo build -p roundtable-server\` ` +
        'or set ROUNDTABLE_BIN',
    );
  });
  const dataDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'roundtable-e2e-'));
  try {
    await addChair(dataDir, chair);
    await fsp.mkdir(artifactsDir, { recursive: true });
    const logPath = path.join(artifactsDir, `${label}-server.log`);
    await fsp.writeFile(logPath, '');
    // Another process may take the free port between our check and the server's
    // bind; then the server exits at once and we try another port.
    let lastError;
    for (let attempt = 1; attempt <= 3; attempt++) {
      const port = await freePort();
      try {
        let current = await launch({ dataDir, port, logPath, startTimeoutMs, env });
        return {
          chair,
          baseUrl: current.baseUrl,
          wsBaseUrl: current.wsBaseUrl,
          port,
          dataDir,
          logPath,
          get alive() {
            return current.alive;
          },
          logTail: () => current.logTail(),
          stop: () => current.stop(),
          /**
           * Stops the server (gracefully, or with `signal` such as 'SIGKILL') and
           * starts it again on the same port and database.
           */
          async restart({ signal = 'SIGTERM' } = {}) {
            await current.halt(signal);
            current = await launch({ dataDir, port, logPath, startTimeoutMs, env });
          },
        };
      } catch (error) {
        lastError = error;
        if (!error.exitedEarly) break;
      }
    }
    throw lastError;
  } catch (error) {
    await fsp.rm(dataDir, { recursive: true, force: true });
    throw error;
  }
}

/** Creates a chair account with the binary's own command, as an operator would. */
async function addChair(dataDir, chair) {
  await new Promise((resolve, reject) => {
    const child = execFile(
      binaryPath,
      ['--data-dir', dataDir, 'chair', 'add', '--email', chair.email, '--name', chair.name],
      { timeout: 15_000, env: serverEnv() },
      (error, _stdout, stderr) =>
        error ? reject(new Error(`chair add failed: ${error.message}\n${stderr}`)) : resolve(),
    );
    child.stdin.end(chair.password);
  });
}

/** The environment for the server: ours, without settings that would point it elsewhere. */
function serverEnv() {
  const env = { ...process.env, NO_COLOR: '1' };
  for (const name of [
    'ROUNDTABLE_DATA_DIR',
    'ROUNDTABLE_LISTEN',
    'ROUNDTABLE_CLIENT_DIR',
    'ROUNDTABLE_PUBLIC_URL',
  ]) {
    delete env[name];
  }
  return env;
}

async function freePort() {
  const probe = net.createServer();
  probe.listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address();
  probe.close();
  await once(probe, 'close');
  return port;
}

async function launch({ dataDir, port, logPath, startTimeoutMs, env = {} }) {
  const listen = `127.0.0.1:${port}`;
  const log = fs.createWriteStream(logPath, { flags: 'a' });
  log.write(`\n=== ${new Date().toISOString()} roundtable serve --listen ${listen}\n`);
  const child = spawn(
    binaryPath,
    ['--data-dir', dataDir, 'serve', '--listen', listen, '--client-dir', clientDir],
    { env: { ...serverEnv(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  running.set(child, dataDir);
  const tail = [];
  const keep = (chunk) => {
    log.write(chunk);
    tail.push(...chunk.toString().split('\n').filter(Boolean));
    tail.splice(0, Math.max(0, tail.length - 40));
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    });
    // A process that could not be started at all never exits: treat it as exited.
    child.once('error', (error) => {
      keep(`e2e: could not run ${binaryPath}: ${error.message}\n`);
      running.delete(child);
      resolve({ code: null, signal: null });
    });
  });

  const baseUrl = `http://${listen}`;
  let halting;
  // Stops the process (SIGTERM, or `signal`), keeping its data.
  const halt = (signal = 'SIGTERM') => {
    halting ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill(signal);
        const timedOut = Symbol('timed out');
        const outcome = await Promise.race([exited, delay(5_000, timedOut)]);
        if (outcome === timedOut) {
          keep(`e2e: the server did not stop within 5 s of ${signal}; killing it\n`);
          child.kill('SIGKILL');
          await Promise.race([exited, delay(5_000)]);
        }
      }
      await new Promise((resolve) => log.end(resolve));
    })();
    return halting;
  };
  let stopping;
  const stop = () => {
    stopping ??= (async () => {
      await halt();
      await fsp.rm(dataDir, { recursive: true, force: true });
    })();
    return stopping;
  };

  const deadline = Date.now() + startTimeoutMs;
  let early = null;
  exited.then((status) => {
    early = status;
  });
  for (;;) {
    if (early) {
      await new Promise((resolve) => log.end(resolve));
      const error = new Error(
        `the server exited before it was ready (code ${early.code}, signal ${early.signal}):\n` +
          tail.join('\n'),
      );
      error.exitedEarly = true;
      throw error;
    }
    if (await healthy(baseUrl)) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(
        `the server did not answer /health within ${startTimeoutMs} ms:\n${tail.join('\n')}`,
      );
    }
    await delay(25);
  }

  return {
    baseUrl,
    wsBaseUrl: `ws://${listen}`,
    port,
    dataDir,
    logPath,
    /** Whether the process is still running. */
    get alive() {
      return child.exitCode === null && child.signalCode === null;
    },
    /** The last lines the server logged. */
    logTail: () => tail.join('\n'),
    /** SIGTERM, then SIGKILL after 5 s; removes the data directory. Safe to call twice. */
    stop,
    halt,
  };
}

async function healthy(baseUrl) {
  try {
    const response = await fetch(`${baseUrl}/health`, { signal: AbortSignal.timeout(1_000) });
    await response.body?.cancel();
    return response.ok;
  } catch {
    return false;
  }
}

function delay(ms, value) {
  return new Promise((resolve) => setTimeout(resolve, ms, value).unref?.());
}
