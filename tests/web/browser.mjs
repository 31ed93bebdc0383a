// Browser tests of `keygen serve` in real headless Chromium (playwright-core).
// Run through run.sh, which builds keygen, prepares a SQLite database with an
// admin account, starts the server and passes everything in the environment.
import { chromium } from 'playwright-core';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const env = (name) => {
  const v = process.env[name];
  if (!v) { throw new Error(`${name} is not set (run tests/web/run.sh)`); }
  return v;
};
const BASE = env('BASE_URL');
const KEYGEN = env('KEYGEN');
const USER = env('ADMIN_USER');
const PASSWORD = env('ADMIN_PASSWORD');
const SHOTS = env('SCREENSHOT_DIR');
const SERVER_LOG = env('SERVER_LOG');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

mkdirSync(SHOTS, { recursive: true });

let passed = 0;
let failed = 0;
const problems = []; // console errors and CSP violations, checked at the end

async function test(name, fn) {
  try {
    await fn();
    passed += 1;
    console.log(`ok   ${name}`);
  } catch (e) {
    failed += 1;
    console.log(`FAIL ${name}\n     ${(e && e.stack || String(e)).split('\n').slice(0, 4).join('\n     ')}`);
  }
}

function assert(cond, message) {
  if (!cond) { throw new Error(message); }
}

function keygen(args, input) {
  const r = spawnSync(KEYGEN, args, { input, encoding: 'utf8', env: process.env });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function shot(page, name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

async function count(page, id) {
  await page.goto(`${BASE}/`);
  return Number((await page.locator(`#${id}`).innerText()).trim());
}

async function noHorizontalScroll(page, what) {
  const [scroll, inner] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  assert(scroll <= inner + 1, `${what}: page is ${scroll}px wide in a ${inner}px viewport`);
}

// Wait for the server (run.sh started it in the background).
for (let i = 0; ; i += 1) {
  try {
    const r = await fetch(`${BASE}/healthz`);
    if (r.ok) { break; }
  } catch (e) { /* not up yet */ }
  if (i > 100) { throw new Error(`server at ${BASE} did not come up`); }
  await new Promise((r) => setTimeout(r, 100));
}

const profile = mkdtempSync(join(tmpdir(), 'hk-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: CHROMIUM,
  headless: true,
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
  viewport: { width: 1280, height: 900 },
});
await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: BASE });
const page = context.pages()[0] || await context.newPage();
const watch = (p) => {
  p.on('console', (m) => { if (m.type() === 'error') { problems.push(`console: ${m.text()}`); } });
  p.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
};
watch(page);

let key = '';
let keyId = '';
let clientUrl = '';
let before = {};

await test('every page redirects to the login page without a session', async () => {
  for (const path of ['/', '/clients', '/usage', '/audit', '/clients/1']) {
    await page.goto(`${BASE}${path}`);
    assert(new URL(page.url()).pathname === '/login', `${path} ended at ${page.url()}`);
  }
  await shot(page, 'desktop-01-login');
});

await test('a wrong password is refused', async () => {
  await page.fill('#username', USER);
  await page.fill('#password', 'not the password at all');
  await page.click('button[type=submit]');
  await page.waitForSelector('#login-error');
  assert((await page.innerText('#login-error')).includes('Wrong user name or password'), 'error text');
  // Chromium logs the expected 401 of this page as a console error.
  const i = problems.findIndex((p) => p.includes('status of 401'));
  assert(i >= 0, 'the refused login answered 401');
  problems.splice(i, 1);
  await shot(page, 'desktop-02-login-error');
});

await test('log in and see the dashboard', async () => {
  await page.fill('#username', USER);
  await page.fill('#password', PASSWORD);
  await page.click('button[type=submit]');
  await page.waitForURL(`${BASE}/`);
  assert((await page.innerText('#current-user')) === USER, 'user name in the navbar');
  before = {
    clients: await count(page, 'count-clients'),
    api: await count(page, 'count-api-keys'),
    validations: await count(page, 'count-validations'),
  };
  assert(await page.locator('svg.usage-chart').count() === 1, 'usage chart');
  await shot(page, 'desktop-03-dashboard-empty');
});

await test('create a client', async () => {
  await page.click('a.nav-link[href="/clients"]');
  await page.fill('#name', 'Reading Room');
  await page.fill('#email', 'ops@example.org');
  await page.fill('#organization', 'City Archives');
  await page.click('#new-client button[type=submit]');
  await page.waitForURL(/\/clients\/\d+$/);
  clientUrl = page.url();
  assert((await page.content()).includes('Created client'), 'flash message');
  await shot(page, 'desktop-04-client');
});

await test('generate an API key: shown once, copied with the button', async () => {
  await page.fill('#api-label', 'production');
  await page.fill('#api-scopes', 'read,write');
  await page.selectOption('#api-expires', '90d');
  await page.click('#generate-api button[type=submit]');
  await page.waitForSelector('#new-key');
  key = await page.inputValue('#new-key');
  keyId = (await page.innerText('#new-key-id')).trim();
  assert(/^hk_api_[0-9A-Za-z]{46}$/.test(key), `key shape: ${key.length} chars`);
  await page.click('#copy-key');
  await page.waitForFunction(() => document.getElementById('copy-status').textContent.includes('Copied'));
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  assert(copied === key, 'clipboard holds the key');
  await shot(page, 'desktop-05-new-key');
  // Never again: not on the client page, not in the audit log.
  await page.goto(clientUrl);
  assert(!(await page.content()).includes(key), 'client page shows the key');
  assert((await page.content()).includes(key.slice(0, 12)), 'display prefix listed');
  await page.goto(`${BASE}/audit`);
  assert(!(await page.content()).includes(key), 'audit page shows the key');
});

await test('the copied key validates with keygen api:validate', async () => {
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  const r = keygen(['api:validate', '--scope', 'read'], `${copied}\n`);
  assert(r.code === 0, `exit ${r.code}: ${r.stdout} ${r.stderr}`);
  assert(r.stdout.split('\n')[0] === 'valid', r.stdout);
  const w = keygen(['api:validate', '--scope', 'delete'], `${copied}\n`);
  assert(w.code === 1 && w.stdout.startsWith('forbidden'), `scope check: ${w.stdout}`);
  // And over HTTP.
  const v = await fetch(`${BASE}/v1/verify`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ key: copied, kind: 'api', scopes: ['write'] }),
  });
  const doc = await v.json();
  assert(v.status === 200 && doc.valid === true && String(doc.key_id) === keyId, JSON.stringify(doc));
});

await test('the dashboard counts the client, the key and the validations', async () => {
  // The server records /v1/verify usage in the background (within a second).
  let after = {};
  for (let i = 0; i < 30; i += 1) {
    after = {
      clients: await count(page, 'count-clients'),
      api: await count(page, 'count-api-keys'),
      validations: await count(page, 'count-validations'),
    };
    if (after.validations >= before.validations + 3) { break; }
    await new Promise((r) => setTimeout(r, 200));
  }
  assert(after.clients === before.clients + 1, `clients ${JSON.stringify(after)}`);
  assert(after.api === before.api + 1, `api keys ${JSON.stringify(after)}`);
  assert(after.validations >= before.validations + 3, `validations ${JSON.stringify(after)}`);
  await shot(page, 'desktop-06-dashboard');
});

await test('revoke the key after a confirmation', async () => {
  await page.goto(clientUrl);
  await page.click(`#api-keys-table tr[data-credential-id="${keyId}"] a:has-text("Revoke")`);
  await page.waitForSelector('#confirm-revoke');
  assert((await page.content()).includes(key.slice(0, 12)), 'confirmation names the key');
  await shot(page, 'desktop-07-revoke-confirm');
  await page.click('#confirm-revoke');
  await page.waitForURL((u) => u.pathname === new URL(clientUrl).pathname);
  assert((await page.content()).includes('Revoked API key'), 'flash');
  const row = page.locator(`#api-keys-table tr[data-credential-id="${keyId}"]`);
  assert((await row.innerText()).includes('revoked'), 'listed as revoked');
  const r = keygen(['api:validate'], `${key}\n`);
  assert(r.code === 1 && r.stdout.startsWith('revoked'), `after revoke: ${r.code} ${r.stdout}`);
});

await test('the dashboard shows the key gone', async () => {
  const api = await count(page, 'count-api-keys');
  assert(api === before.api, `api keys ${api}`);
  await shot(page, 'desktop-08-dashboard-after-revoke');
});

await test('usage log filters by outcome', async () => {
  await page.goto(`${BASE}/usage`);
  await page.selectOption('#f-outcome', 'revoked');
  await page.click('#usage-filters button[type=submit]');
  await page.waitForURL(/outcome=revoked/);
  const rows = await page.locator('#usage-table tbody tr').count();
  assert(rows === 1, `${rows} revoked rows`);
  await page.goto(`${BASE}/usage`);
  await shot(page, 'desktop-09-usage');
});

await test('deactivate the client: the confirmation counts what is revoked', async () => {
  await page.goto(clientUrl);
  await page.fill('#ai-label', 'ai-server');
  await page.fill('#ai-scopes', 'ai:describe');
  await page.click('#generate-ai button[type=submit]');
  await page.waitForSelector('#new-key');
  const token = await page.inputValue('#new-key');
  await page.click('#done');
  await page.click('#deactivate-link');
  await page.waitForSelector('#confirm-deactivate');
  assert((await page.innerText('#revoke-count-ai')) === '1 AI token', 'AI token count');
  assert((await page.innerText('#revoke-count-api')) === '0 API keys', 'API key count');
  await shot(page, 'desktop-10-deactivate-confirm');
  await page.click('#confirm-deactivate');
  await page.waitForSelector('text=revoked 0 API keys and 1 AI token');
  const r = keygen(['ai:validate'], `${token}\n`);
  assert(r.code === 1 && r.stdout.startsWith('revoked'), `token after deactivation: ${r.stdout}`);
  await shot(page, 'desktop-11-client-inactive');
});

const phone = await context.newPage();
watch(phone);
await phone.setViewportSize({ width: 390, height: 844 });

await test('phone width: navigation collapses and opens, no sideways scrolling', async () => {
  await phone.goto(`${BASE}/`);
  assert(!(await phone.isVisible('a.nav-link[href="/usage"]')), 'menu collapsed');
  await noHorizontalScroll(phone, 'dashboard');
  await shot(phone, 'phone-01-dashboard');
  await phone.click('button.navbar-toggler');
  await phone.waitForSelector('a.nav-link[href="/usage"]', { state: 'visible' });
  await shot(phone, 'phone-02-menu');
  for (const path of ['/clients', '/usage', '/audit', new URL(clientUrl).pathname]) {
    await phone.goto(`${BASE}${path}`);
    await noHorizontalScroll(phone, path);
  }
  await phone.goto(`${BASE}/clients`);
  await shot(phone, 'phone-03-clients');
  await phone.goto(`${BASE}/usage`);
  await shot(phone, 'phone-04-usage');
});

await test('phone width: generate a key and copy it', async () => {
  await phone.goto(`${BASE}/clients`);
  await phone.fill('#name', 'Phone Client');
  await phone.fill('#email', 'phone@example.org');
  await phone.click('#new-client button[type=submit]');
  await phone.waitForURL(/\/clients\/\d+$/);
  await noHorizontalScroll(phone, 'client page');
  await shot(phone, 'phone-05-client');
  await phone.fill('#api-label', 'mobile');
  await phone.click('#generate-api button[type=submit]');
  await phone.waitForSelector('#new-key');
  await noHorizontalScroll(phone, 'new key page');
  await phone.click('#copy-key');
  await phone.waitForFunction(() => document.getElementById('copy-status').textContent.includes('Copied'));
  const k = await phone.inputValue('#new-key');
  assert(keygen(['api:validate'], `${k}\n`).code === 0, 'phone key validates');
  await shot(phone, 'phone-06-new-key');
});

await test('log out ends the session', async () => {
  await page.goto(`${BASE}/`);
  await page.click('nav button[type=submit]:has-text("Log out")');
  await page.waitForURL(`${BASE}/login`);
  await page.goto(`${BASE}/clients`);
  assert(new URL(page.url()).pathname === '/login', 'clients needs a login again');
});

await test('no console errors or CSP violations; the key never reached the server log', async () => {
  assert(problems.length === 0, problems.join('\n'));
  const log = readFileSync(SERVER_LOG, 'utf8');
  assert(!log.includes(key) && !log.includes('hk_api_') && !log.includes('hk_ai_'), 'a key in the server log');
  assert(log.includes('POST "/v1/verify" 200'), 'access log has the verify call');
});

await context.close();
rmSync(profile, { recursive: true, force: true });
console.log(`screenshots: ${SHOTS}`);
console.log(`Web browser tests: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
