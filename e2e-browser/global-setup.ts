import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

// The password the first start gives the admin account.
export const ADMIN_PASSWORD = 'e2e-admin-password-1';
// The server-wide ingest token, for tests that post registry events.
export const INGEST_TOKEN = 'e2e-ingest-token-1';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

async function waitHealthy(url: string, child: { exitCode: number | null }, logFile: string) {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`registryhooks exited with ${child.exitCode}; see ${logFile}`);
    }
    try {
      const res = await fetch(url + '/healthz');
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`registryhooks did not answer ${url}/healthz within 30s; see ${logFile}`);
}

// Builds the binary once, starts it with a fresh database on a free
// loopback port, and hands its URL to the tests in RH_BASE_URL. The
// returned function stops it and removes the temporary directory.
export default async function globalSetup() {
  const root = path.resolve(__dirname, '..');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rh-e2e-'));
  const bin = path.join(dir, 'registryhooks');
  execFileSync('go', ['build', '-o', bin, '.'], { cwd: root, stdio: 'inherit' });

  const port = await freePort();
  const baseURL = `http://127.0.0.1:${port}`;
  const logFile = path.join(dir, 'server.log');
  const log = openSync(logFile, 'w');
  const child = spawn(
    bin,
    ['serve', '--db', path.join(dir, 'e2e.db'), '--addr', `127.0.0.1:${port}`, '--allow-private-targets',
      '--delivery-timeout', '3s', '--max-attempts', '2'],
    {
      cwd: dir,
      env: { ...process.env, REGISTRYHOOKS_ADMIN_PASSWORD: ADMIN_PASSWORD, REGISTRYHOOKS_INGEST_TOKEN: INGEST_TOKEN },
      stdio: ['ignore', log, log],
    },
  );
  try {
    await waitHealthy(baseURL, child, logFile);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  process.env.RH_BASE_URL = baseURL;
  // For tests that need a server of their own (other settings).
  process.env.RH_BIN = bin;
  process.env.RH_SERVER_LOG = logFile;

  return async () => {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    // Server-side errors are worth seeing even when every test passed.
    const errors = readFileSync(logFile, 'utf8').split('\n').filter((l) => /level=ERROR/.test(l));
    if (errors.length > 0) console.warn(`registryhooks logged ${errors.length} error(s):\n${errors.join('\n')}`);
    if (!process.env.RH_KEEP_TMP) rmSync(dir, { recursive: true, force: true });
  };
}
