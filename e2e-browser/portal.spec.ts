import { expect, test, type Locator, type Page } from '@playwright/test';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { ADMIN_PASSWORD, INGEST_TOKEN } from './global-setup';
import { base, expectAccessible, signIn } from './helpers';

// The portal as a person uses it, found by role and accessible name (the
// names are fixed in interfaces.md). The tests share one server and one
// database, so they run in order: later ones use what earlier ones made.
// 90 s per test: on the shared two-core VM under load a test's steps slow down many times over.
test.describe.configure({ mode: 'serial', timeout: 90_000 });

const shots = path.resolve(__dirname, '..', 'docs', 'screenshots');

const HOOK = 'buildhook1';
const HOOK404 = 'missinghook1';
const SECRET = 'Bearer e2e-secret-value';

// A webhook receiver on loopback: it records every request and answers with
// the status and JSON body it was made with.
type Received = { method: string; url: string; headers: http.IncomingHttpHeaders; body: string };
type Receiver = { url: string; received: Received[]; close: () => Promise<void> };

function startReceiver(status: number, body: unknown): Promise<Receiver> {
  const received: Received[] = [];
  const srv = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(status, { 'Content-Type': 'application/json', 'X-Receiver': 'e2e' });
      res.end(JSON.stringify(body));
    });
  });
  return new Promise((resolve) => {
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}/hooks/registry`,
        received,
        close: () => new Promise<void>((r) => srv.close(() => r())),
      });
    });
  });
}

let ok: Receiver;
let missing: Receiver;

test.beforeAll(async () => {
  ok = await startReceiver(200, { received: true, note: 'thanks' });
  missing = await startReceiver(404, { error: 'no such hook' });
});

test.afterAll(async () => {
  await ok?.close();
  await missing?.close();
});

async function openBlade(page: Page) {
  // The main navigation's link (a webhook's page also has a breadcrumb to the blade).
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Webhooks', exact: true }).click();
  await expect(page.getByRole('heading', { name: 'Webhooks', level: 1 })).toBeVisible();
}

// The cell of the given column in a row, by the column header's name.
async function cell(table: Locator, row: Locator, column: string): Promise<Locator> {
  const headers = await table.getByRole('columnheader').allInnerTexts();
  const i = headers.findIndex((h) => h.trim().toLowerCase() === column.toLowerCase());
  expect(i, `column ${column} in ${headers.join(', ')}`).toBeGreaterThanOrEqual(0);
  return row.getByRole('cell').nth(i);
}

// The message an invalid field points at through aria-describedby.
async function expectInvalid(field: Locator, message: string | RegExp) {
  await expect(field).toHaveAttribute('aria-invalid', 'true');
  const ids = ((await field.getAttribute('aria-describedby')) ?? '').split(/\s+/).filter(Boolean);
  expect(ids.length).toBeGreaterThan(0);
  const page = field.page();
  const described = page.locator(ids.map((id) => `[id="${id}"]`).join(', ')).filter({ hasText: message });
  await expect(described).toBeVisible();
}

async function expectValid(field: Locator, oldMessage: string | RegExp) {
  await expect(field).not.toHaveAttribute('aria-invalid', 'true');
  const ids = ((await field.getAttribute('aria-describedby')) ?? '').split(/\s+/).filter(Boolean);
  const page = field.page();
  await expect(page.locator(ids.map((id) => `[id="${id}"]`).join(', ')).filter({ hasText: oldMessage })).toHaveCount(0);
}

test('sign in: a wrong password is refused, the right one lets admin in', async ({ page }) => {
  await page.goto(base() + '/');
  await expect(page).toHaveURL(/\/login/);
  await page.getByLabel('Username').fill('admin');
  await page.getByLabel('Password').fill('not-the-password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByText('Invalid username or password.')).toBeVisible();
  await expect(page.getByLabel('Username')).toHaveValue('admin');

  await page.getByLabel('Password').fill(ADMIN_PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).not.toHaveURL(/\/login/);
  await expect(page.getByRole('link', { name: 'Webhooks', exact: true })).toBeVisible();
  await expect(page.getByRole('button', { name: 'Sign out' })).toBeVisible();
});

test('the Webhooks blade: heading, Add, columns, empty state', async ({ page }) => {
  await signIn(page, 'admin', ADMIN_PASSWORD);
  await openBlade(page);
  await expect(page).toHaveURL(/\/registries\/myregistry\/webhooks$/);
  await expect(page.getByRole('link', { name: 'Add' })).toBeVisible();
  await expect(page.getByRole('button', { name: 'Refresh' }).or(page.getByRole('link', { name: 'Refresh' }))).toBeVisible();
  const table = page.getByRole('table');
  for (const name of ['Name', 'Status', 'Scope', 'Actions', 'HTTP status']) {
    await expect(table.getByRole('columnheader', { name, exact: true })).toBeVisible();
  }
  await expect(page.getByText('No webhooks yet')).toBeVisible();
});

test('add a webhook: inline validation, server-side errors, then success', async ({ page }) => {
  await signIn(page, 'admin', ADMIN_PASSWORD);
  await openBlade(page);
  await page.getByRole('link', { name: 'Add' }).click();
  await expect(page.getByRole('heading', { name: 'Add webhook' })).toBeVisible();

  const name = page.getByLabel('Webhook name');
  const uri = page.getByLabel('Service URI');
  const headers = page.getByLabel('Custom headers');
  const scope = page.getByLabel('Scope');
  const actions = page.getByRole('group', { name: 'Actions' });
  await expect(page.getByRole('group', { name: 'Status' }).getByLabel('enabled')).toBeChecked();
  for (const a of ['push', 'delete', 'quarantine', 'chart_push', 'chart_delete']) {
    await expect(actions.getByLabel(a, { exact: true })).toBeVisible();
  }

  // A bad name, and leave the field: the message appears before any submit.
  await name.fill('ab');
  await name.blur();
  await expectInvalid(name, /5-50 characters/);
  // Fixed: the message goes.
  await name.fill(HOOK);
  await name.blur();
  await expectValid(name, /5-50 characters/);

  await uri.fill('ftp://example.com/hook');
  await uri.blur();
  await expectInvalid(uri, /http or https/);

  await headers.fill('X-Token ' + SECRET);
  await headers.blur();
  await expectInvalid(headers, /colon is missing/);

  await scope.fill('Foo:');
  await scope.blur();
  await expectInvalid(scope, /empty tag/);

  // push is checked by default; with no action at all the group says so.
  await expect(actions.getByLabel('push', { exact: true })).toBeChecked();
  await actions.getByLabel('push', { exact: true }).uncheck();
  await expectInvalid(actions, /at least one action/);

  // Submitting anyway: the server says the same, and saves nothing.
  await page.getByRole('button', { name: 'Create' }).click();
  await expect(page.getByRole('heading', { name: 'Add webhook' })).toBeVisible();
  await expectInvalid(page.getByLabel('Service URI'), /http or https/);
  await expectInvalid(page.getByLabel('Custom headers'), /colon is missing/);
  await expectInvalid(page.getByLabel('Scope'), /empty tag/);
  await expectInvalid(page.getByRole('group', { name: 'Actions' }), /at least one action/);
  await expect(page.getByLabel('Webhook name')).toHaveValue(HOOK); // values kept
  await expect(page.getByLabel('Webhook name')).not.toHaveAttribute('aria-invalid', 'true');

  // Make it right.
  await page.getByLabel('Service URI').fill(ok.url);
  await page.getByLabel('Service URI').blur();
  await expectValid(page.getByLabel('Service URI'), /http or https/);
  await page.getByLabel('Custom headers').fill(`X-Token: ${SECRET}\n\nX-Team: platform`);
  await page.getByLabel('Custom headers').blur();
  await expectValid(page.getByLabel('Custom headers'), /colon is missing/);
  await page.getByLabel('Scope').fill('team/app:*');
  await page.getByLabel('Scope').blur();
  await expectValid(page.getByLabel('Scope'), /empty tag/);
  await page.getByRole('group', { name: 'Actions' }).getByLabel('push', { exact: true }).check();
  await expectValid(page.getByRole('group', { name: 'Actions' }), /at least one action/);
  await page.getByRole('group', { name: 'Actions' }).getByLabel('delete', { exact: true }).check();
  await page.getByRole('button', { name: 'Create' }).click();

  await expect(page).toHaveURL(/\/registries\/myregistry\/webhooks$/);
  await expect(page.getByRole('heading', { name: 'Webhooks', level: 1 })).toBeVisible();
  const link = page.getByRole('table').getByRole('link', { name: HOOK });
  await expect(link).toBeVisible();
  const row = page.getByRole('row').filter({ has: page.getByRole('link', { name: HOOK }) });
  await expect(row).toContainText('enabled');
  await expect(row).toContainText('team/app:*');
  await expect(row).toContainText('push, delete');
  // Only the one good submit saved anything.
  await expect(page.getByRole('table').getByRole('link')).toHaveCount(1);
});

test('Ping: the HTTP status cell shows the receiver\'s answer without a reload; the event shows request and response', async ({ page }) => {
  await signIn(page, 'admin', ADMIN_PASSWORD);
  await openBlade(page);
  await page.getByRole('link', { name: HOOK }).click();
  await expect(page.getByRole('heading', { name: HOOK })).toBeVisible();
  // Secrets are masked on the page.
  await expect(page.getByText('X-Token: ******')).toBeVisible();
  await expect(page.getByText(SECRET)).toHaveCount(0);

  await page.evaluate(() => { (window as unknown as { __noReload: string }).__noReload = 'still here'; });
  await page.getByRole('button', { name: 'Ping' }).click();

  const events = page.getByRole('table').filter({ has: page.getByRole('columnheader', { name: 'Event ID' }) });
  for (const name of ['Event ID', 'Action', 'Timestamp', 'HTTP status']) {
    await expect(events.getByRole('columnheader', { name, exact: true })).toBeVisible();
  }
  const row = events.getByRole('row').filter({ hasText: 'ping' });
  await expect(row).toHaveCount(1);
  await expect(await cell(events, row, 'HTTP status')).toHaveText('200 OK', { timeout: 15_000 });
  expect(await page.evaluate(() => (window as unknown as { __noReload?: string }).__noReload)).toBe('still here');

  // The receiver got the ping: a POST with JSON {"action":"ping","id":...}
  // and the custom headers.
  expect(ok.received).toHaveLength(1);
  const got = ok.received[0];
  expect(got.method).toBe('POST');
  expect(got.url).toBe('/hooks/registry');
  expect(got.headers['content-type']).toMatch(/application\/json/);
  expect(got.headers['x-token']).toBe(SECRET);
  expect(got.headers['x-team']).toBe('platform');
  const payload = JSON.parse(got.body);
  expect(payload.action).toBe('ping');
  expect(typeof payload.id).toBe('string');
  expect(payload.id.length).toBeGreaterThan(0);

  // The row is that event, and its Event ID opens the detail.
  const eventLink = row.getByRole('link', { name: payload.id });
  await expect(eventLink).toBeVisible();
  await eventLink.click();
  const requestTab = page.getByRole('tab', { name: 'Request' });
  const responseTab = page.getByRole('tab', { name: 'Response' });
  await expect(requestTab).toHaveAttribute('aria-selected', 'true');
  await expect(responseTab).toHaveAttribute('aria-selected', 'false');
  const reqPanel = page.getByRole('tabpanel', { name: 'Request' });
  await expect(reqPanel).toBeVisible();
  await expect(reqPanel).toContainText('POST');
  // The URI's path and query may carry tokens: the record keeps the host only.
  const okHost = new URL(ok.url).host;
  await expect(reqPanel).toContainText(`http://${okHost}/******`);
  await expect(reqPanel).not.toContainText('/hooks/registry');
  await expect(reqPanel.getByRole('row', { name: /X-Token/ })).toContainText('******');
  await expect(reqPanel).not.toContainText(SECRET);
  await expect(reqPanel.getByRole('row', { name: /X-Team/ })).toBeVisible();
  // Pretty-printed: one key per line, indented.
  await expect(reqPanel.locator('pre')).toContainText(`{\n  "id": "${payload.id}",`);
  await expect(reqPanel.locator('pre')).toContainText('"action": "ping"');

  await responseTab.click();
  await expect(responseTab).toHaveAttribute('aria-selected', 'true');
  const resPanel = page.getByRole('tabpanel', { name: 'Response' });
  await expect(resPanel).toBeVisible();
  await expect(reqPanel).toBeHidden();
  await expect(resPanel).toContainText('200 OK');
  await expect(resPanel.getByRole('row', { name: /X-Receiver/ })).toContainText('e2e');
  await expect(resPanel.locator('pre')).toContainText('{\n  "received": true,\n  "note": "thanks"\n}');

  // Keyboard: arrow keys move between the tabs.
  await page.keyboard.press('ArrowLeft');
  await expect(requestTab).toHaveAttribute('aria-selected', 'true');
  await expect(reqPanel).toBeVisible();

  await page.screenshot({ path: path.join(shots, 'webhook.png'), fullPage: true });
});

test('Ping against a receiver that answers 404 shows 404 Not Found', async ({ page }) => {
  await signIn(page, 'admin', ADMIN_PASSWORD);
  await openBlade(page);
  await page.getByRole('link', { name: 'Add' }).click();
  await page.getByLabel('Webhook name').fill(HOOK404);
  await page.getByLabel('Service URI').fill(missing.url);
  await page.getByRole('group', { name: 'Actions' }).getByLabel('push', { exact: true }).check();
  await page.getByRole('group', { name: 'Status' }).getByLabel('disabled').check();
  await page.getByRole('button', { name: 'Create' }).click();
  await expect(page).toHaveURL(/\/webhooks$/);

  await page.getByRole('link', { name: HOOK404 }).click();
  await expect(page.getByRole('heading', { name: HOOK404 })).toBeVisible();
  await page.evaluate(() => { (window as unknown as { __noReload: string }).__noReload = 'still here'; });
  await page.getByRole('button', { name: 'Ping' }).click();
  const events = page.getByRole('table').filter({ has: page.getByRole('columnheader', { name: 'Event ID' }) });
  const row = events.getByRole('row').filter({ hasText: 'ping' });
  await expect(await cell(events, row, 'HTTP status')).toContainText('404 Not Found', { timeout: 15_000 });
  expect(await page.evaluate(() => (window as unknown as { __noReload?: string }).__noReload)).toBe('still here');
  expect(missing.received.length).toBeGreaterThanOrEqual(1);
  expect(JSON.parse(missing.received[0].body).action).toBe('ping');

  // The blade shows each webhook's last HTTP status.
  await openBlade(page);
  const blade = page.getByRole('table');
  const okRow = blade.getByRole('row').filter({ has: page.getByRole('link', { name: HOOK }) });
  const missingRow = blade.getByRole('row').filter({ has: page.getByRole('link', { name: HOOK404 }) });
  await expect(await cell(blade, okRow, 'HTTP status')).toHaveText('200 OK');
  await expect(await cell(blade, missingRow, 'HTTP status')).toContainText('404 Not Found');
  await expect(await cell(blade, missingRow, 'Status')).toHaveText('disabled');
  await expect(await cell(blade, missingRow, 'Scope')).toHaveText('all events');
  await page.screenshot({ path: path.join(shots, 'blade.png'), fullPage: true });
});

test('a Reader sees the webhooks but cannot Add, Ping or Delete', async ({ page }) => {
  await signIn(page, 'admin', ADMIN_PASSWORD);
  await page.getByRole('link', { name: 'Users' }).click();
  await expect(page.getByRole('heading', { name: 'Users' })).toBeVisible();
  await page.getByLabel('New username').fill('viewer1');
  await page.getByLabel('Initial password').fill('viewer-password-1');
  await page.getByLabel('Role', { exact: true }).selectOption('Reader');
  await page.getByRole('button', { name: 'Add user' }).click();
  await expect(page.getByRole('row').filter({ hasText: 'viewer1' })).toBeVisible();
  // Webhooks is one click away from a page of no registry too.
  await openBlade(page);
  await expect(page).toHaveURL(/\/registries\/myregistry\/webhooks$/);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/login/);

  await signIn(page, 'viewer1', 'viewer-password-1');
  await openBlade(page);
  await expect(page.getByRole('link', { name: HOOK })).toBeVisible();
  await expect(page.getByRole('link', { name: 'Add' })).toHaveCount(0);
  await expect(page.getByRole('button', { name: 'Add' })).toHaveCount(0);
  await expect(page.getByRole('link', { name: 'Users' })).toHaveCount(0);
  await page.getByRole('link', { name: HOOK }).click();
  await expect(page.getByRole('heading', { name: HOOK })).toBeVisible();
  await expect(page.getByRole('button', { name: 'Ping' })).toHaveCount(0);
  await expect(page.getByRole('button', { name: 'Delete' })).toHaveCount(0);
  await expect(page.getByRole('link', { name: 'Edit' })).toHaveCount(0);
  // The events are there to read.
  await expect(page.getByRole('row').filter({ hasText: 'ping' })).toHaveCount(1);
});

// A port nothing listens on, and a receiver slower than --delivery-timeout (3s).
function deadURL(): Promise<string> {
  const srv = http.createServer();
  return new Promise((resolve) => {
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(`http://127.0.0.1:${port}/gone`));
    });
  });
}

async function addWebhook(page: Page, name: string, uri: string) {
  await openBlade(page);
  await page.getByRole('link', { name: 'Add' }).click();
  await page.getByLabel('Webhook name').fill(name);
  await page.getByLabel('Service URI').fill(uri);
  await page.getByRole('button', { name: 'Create' }).click();
  await expect(page.getByRole('link', { name })).toBeVisible();
}

async function pingAndReadStatus(page: Page, name: string, expected: RegExp) {
  await openBlade(page);
  await page.getByRole('link', { name }).click();
  await expect(page.getByRole('heading', { name })).toBeVisible();
  await page.getByRole('button', { name: 'Ping' }).click();
  const events = page.getByRole('table').filter({ has: page.getByRole('columnheader', { name: 'Event ID' }) });
  const row = events.getByRole('row').filter({ hasText: 'ping' });
  await expect(await cell(events, row, 'HTTP status')).toContainText(expected, { timeout: 15_000 });
}

test('Ping shows a refused connection in words and a timeout as 504 Gateway Timeout', async ({ page }) => {
  const slow = http.createServer((_req, res) => {
    setTimeout(() => { res.writeHead(200); res.end('late'); }, 6_000).unref();
  });
  await new Promise<void>((r) => slow.listen(0, '127.0.0.1', () => r()));
  try {
    await signIn(page, 'admin', ADMIN_PASSWORD);
    await addWebhook(page, 'refusedhook1', await deadURL());
    await addWebhook(page, 'slowhook1', `http://127.0.0.1:${(slow.address() as AddressInfo).port}/slow`);
    await pingAndReadStatus(page, 'refusedhook1', /connection refused/);
    await pingAndReadStatus(page, 'slowhook1', /504 Gateway Timeout/);
  } finally {
    slow.closeAllConnections();
    await new Promise<void>((r) => slow.close(() => r()));
  }
});

test('Delete asks for confirmation, then the webhook leaves the blade', async ({ page }) => {
  await signIn(page, 'admin', ADMIN_PASSWORD);
  await openBlade(page);
  await page.getByRole('link', { name: HOOK404 }).click();
  await expect(page.getByRole('heading', { name: HOOK404 })).toBeVisible();

  // Cancel first: nothing happens.
  await page.getByRole('button', { name: 'Delete' }).click();
  const dialog = page.getByRole('dialog');
  await expect(dialog).toBeVisible();
  await expect(dialog).toContainText(HOOK404);
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  await expect(dialog).toBeHidden();
  await expect(page.getByRole('heading', { name: HOOK404 })).toBeVisible();

  await page.getByRole('button', { name: 'Delete' }).click();
  await expect(dialog).toBeVisible();
  await dialog.getByRole('button', { name: 'Delete' }).click();

  await expect(page).toHaveURL(/\/registries\/myregistry\/webhooks$/);
  await expect(page.getByRole('heading', { name: 'Webhooks', level: 1 })).toBeVisible();
  await expect(page.getByRole('link', { name: HOOK404 })).toHaveCount(0);
  await expect(page.getByRole('link', { name: HOOK })).toBeVisible();
  await expect(page.getByRole('status')).toContainText(`Webhook ${HOOK404} deleted.`);
  // Its page is gone too.
  const res = await page.request.get(`${base()}/registries/myregistry/webhooks/${HOOK404}`);
  expect(res.status()).toBe(404);
});

test('the blade follows deliveries in flight without a reload, and its Health column charts the last 24 hours', async ({ page }) => {
  // A receiver that takes 2 s per request: 30 pushes through 4 slots per
  // webhook keep its newest delivery open for about 15 s.
  const slow = http.createServer((req, res) => {
    req.resume();
    setTimeout(() => { res.writeHead(200); res.end('{}'); }, 2_000).unref();
  });
  await new Promise<void>((r) => slow.listen(0, '127.0.0.1', () => r()));
  try {
    await signIn(page, 'admin', ADMIN_PASSWORD);
    await addWebhook(page, 'livehook1', `http://127.0.0.1:${(slow.address() as AddressInfo).port}/live`);
    await openBlade(page);
    await page.evaluate(() => { (window as unknown as { __noReload: string }).__noReload = 'still here'; });

    // A Distribution registry reports 30 pushes.
    const events = Array.from({ length: 30 }, (_, i) => ({
      id: `live-${Date.now()}-${i}`, timestamp: new Date().toISOString(), action: 'push',
      target: { mediaType: 'application/vnd.docker.distribution.manifest.v2+json', digest: 'sha256:' + 'ab'.repeat(32),
        size: 500, length: 500, repository: 'team/live', tag: `v${i}` },
      request: { id: `r${i}`, host: 'localhost:5000', method: 'PUT', useragent: 'docker' },
    }));
    const res = await page.request.post(base() + '/ingest/distribution/myregistry', {
      headers: { Authorization: `Bearer ${INGEST_TOKEN}`, 'Content-Type': 'application/vnd.docker.distribution.events.v1+json' },
      data: JSON.stringify({ events }),
    });
    expect(res.status()).toBe(202);

    // Refresh (htmx, the table only) shows them open; from then on the
    // table polls by itself until the newest has its answer.
    await page.getByRole('link', { name: 'Refresh' }).click();
    const blade = page.getByRole('table');
    const row = blade.getByRole('row').filter({ has: page.getByRole('link', { name: 'livehook1' }) });
    const status = await cell(blade, row, 'HTTP status');
    await expect(status).toHaveText(/Pending/);
    await expect(status).toHaveText('200 OK', { timeout: 60_000 });
    expect(await page.evaluate(() => (window as unknown as { __noReload?: string }).__noReload)).toBe('still here');

    const health = await cell(blade, row, 'Health');
    await expect(async () => {
      await page.getByRole('link', { name: 'Refresh' }).click();
      await expect(health).toContainText('100% of 30', { timeout: 2_000 });
    }).toPass({ timeout: 60_000 });
    await expect(health.getByRole('img', { name: /Last 24 hours: 30 deliveries, 30 succeeded, 0 failed/ })).toBeVisible();
    await expect(health.locator('[data-part="succeeded"]')).toHaveCount(1);
    await expect(health.getByText('failing')).toHaveCount(0);
    await expectAccessible(page, 'the blade with health charts');
  } finally {
    slow.closeAllConnections();
    await new Promise<void>((r) => slow.close(() => r()));
  }
});

test('a webhook whose deliveries fail is marked failing on the blade and its page', async ({ page }) => {
  await signIn(page, 'admin', ADMIN_PASSWORD);
  await addWebhook(page, 'failhook1', missing.url);
  await pingAndReadStatus(page, 'failhook1', /404 Not Found/);
  await openBlade(page);
  const blade = page.getByRole('table');
  const row = blade.getByRole('row').filter({ has: page.getByRole('link', { name: 'failhook1' }) });
  const health = await cell(blade, row, 'Health');
  await expect(health).toContainText('0% of 1');
  await expect(health.getByText('failing', { exact: true })).toBeVisible();
  await expect(health.locator('[data-part="failed"]')).toHaveCount(1);

  await page.getByRole('link', { name: 'failhook1' }).click();
  const day = page.getByTestId('health-24 hours');
  await expect(day).toContainText('Last 24 hours');
  await expect(day).toContainText('1 deliveries: 0 succeeded, 1 failed, 0 pending');
  await expect(day.getByText('failing', { exact: true })).toBeVisible();
  await expect(page.getByTestId('health-7 days').getByRole('img', { name: /Last 7 days: 1 deliveries/ })).toBeVisible();
  await page.screenshot({ path: path.join(shots, 'health.png'), fullPage: true });
});

test('the events table filters by result, action and repository, and the filter stays in the URL', async ({ page }) => {
  await signIn(page, 'admin', ADMIN_PASSWORD);
  await openBlade(page);
  await page.getByRole('link', { name: HOOK }).click();
  const events = page.getByRole('table').filter({ has: page.getByRole('columnheader', { name: 'Event ID' }) });
  await expect(events.getByRole('row').filter({ hasText: 'ping' })).toHaveCount(1);

  const filter = page.getByRole('search', { name: 'Filter events' });
  await filter.getByLabel('Result').selectOption('failed');
  await filter.getByRole('button', { name: 'Filter' }).click();
  await expect(page).toHaveURL(/result=failed/);
  await expect(page.getByText('No events match this filter.')).toBeVisible();

  await filter.getByLabel('Result').selectOption('succeeded');
  await filter.getByLabel('Action').selectOption('ping');
  await filter.getByRole('button', { name: 'Filter' }).click();
  await expect(page).toHaveURL(/result=succeeded/);
  await expect(page).toHaveURL(/action=ping/);
  await expect(events.getByRole('row').filter({ hasText: 'ping' })).toHaveCount(1);
  await page.reload();
  await expect(filter.getByLabel('Result')).toHaveValue('succeeded');
  await expect(events.getByRole('row').filter({ hasText: 'ping' })).toHaveCount(1);

  await filter.getByLabel('Repository').fill('team/none');
  await filter.getByRole('button', { name: 'Filter' }).click();
  await expect(page).toHaveURL(/repository=team%2Fnone/);
  await expect(page.getByText('No events match this filter.')).toBeVisible();
  await page.getByRole('link', { name: 'Clear filters' }).click();
  await expect(page).not.toHaveURL(/result=/);
});

// axe-core on every page, in three tests so each fits its time on a busy VM.
test('axe-core: the sign-in page, the blade and the Add form have 0 violations (WCAG 2.1 A and AA)', async ({ page, browser }) => {
  // Signed out: the sign-in page, also with its error.
  const anonContext = await browser.newContext();
  const anon = await anonContext.newPage();
  await anon.goto(base() + '/login');
  await expectAccessible(anon, 'the sign-in page');
  await anon.getByLabel('Username').fill('admin');
  await anon.getByLabel('Password').fill('wrong-password-1');
  await anon.getByRole('button', { name: 'Sign in' }).click();
  await expect(anon.getByText('Invalid username or password.')).toBeVisible();
  await expectAccessible(anon, 'the sign-in page with an error');
  await anonContext.close();

  await signIn(page, 'admin', ADMIN_PASSWORD);
  await openBlade(page);
  await expectAccessible(page, 'the Webhooks blade');
  await page.getByRole('link', { name: 'Add' }).click();
  await expectAccessible(page, 'the Add form');
  await page.getByLabel('Webhook name').fill('ab');
  await page.getByLabel('Webhook name').blur();
  await expectInvalid(page.getByLabel('Webhook name'), /5-50 characters/);
  await page.getByRole('button', { name: 'Create' }).click();
  await expect(page.getByRole('heading', { name: 'Add webhook' })).toBeVisible();
  await expectAccessible(page, 'the Add form after a refused submit, with its errors');
});

test('axe-core: the webhook page, an event\'s Request and Response, Edit and the Delete dialog have 0 violations', async ({ page }) => {
  await signIn(page, 'admin', ADMIN_PASSWORD);
  await openBlade(page);
  await page.getByRole('link', { name: HOOK }).click();
  await expectAccessible(page, 'the webhook page');
  const events = page.getByRole('table').filter({ has: page.getByRole('columnheader', { name: 'Event ID' }) });
  await events.getByRole('row').filter({ hasText: 'ping' }).first().getByRole('link').click();
  await expect(page.getByRole('tab', { name: 'Request' })).toBeVisible();
  await expectAccessible(page, 'the webhook page with an event open (Request)');
  await page.getByRole('tab', { name: 'Response' }).click();
  await expectAccessible(page, 'the webhook page with an event open (Response)');
  await page.getByRole('button', { name: 'Delete' }).click();
  await expect(page.getByRole('dialog')).toBeVisible();
  await expectAccessible(page, 'the Delete dialog');
  await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click();
  await page.getByRole('link', { name: 'Edit' }).click();
  await expect(page.getByRole('heading', { name: /Edit webhook/ })).toBeVisible();
  await expectAccessible(page, 'the Edit form');
});

test('axe-core: Registries, API tokens, Users, Audit log and a 404 page have 0 violations', async ({ page }) => {
  await signIn(page, 'admin', ADMIN_PASSWORD);
  for (const link of ['Registries', 'API tokens', 'Users', 'Audit log']) {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: link, exact: true }).click();
    await expect(page.getByRole('heading', { name: link, level: 1 })).toBeVisible();
    await expectAccessible(page, `the ${link} page`);
  }
  await page.goto(base() + '/registries/myregistry/webhooks/nosuchhook1');
  await expectAccessible(page, 'a 404 page');
});
