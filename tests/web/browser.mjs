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

async function verify(key, kind = 'api') {
  const r = await fetch(`${BASE}/v1/verify`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ key, kind }),
  });
  return { http: r.status, ...(await r.json()) };
}

// Polls /v1/verify until `status` (the change feed takes up to a second).
async function verifyUntil(key, status) {
  let last = {};
  for (let i = 0; i < 50; i += 1) {
    last = await verify(key);
    if (last.status === status) { return last; }
    await new Promise((r) => setTimeout(r, 100));
  }
  return last;
}

// Chromium logs every expected 4xx answer as a console error: take the
// one this step caused out of the list the last test checks.
function expectConsoleStatus(code) {
  const i = problems.findIndex((p) => p.includes(`status of ${code}`));
  assert(i >= 0, `the ${code} answer was seen`);
  problems.splice(i, 1);
}

// The POST forms on the current page, the log-out form aside.
async function postForms(p) {
  return p.locator('form[method="post"]:not([action="/logout"])').count();
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


let rotClientUrl = '';
let rotKeyId = '';
let rotOld = '';
let rotNew = '';

await test('rotate a key: the new one is shown once and copied, the old one still valid', async () => {
  await page.goto(`${BASE}/clients`);
  await page.fill('#name', 'Rotation Archive');
  await page.fill('#email', 'rotate@example.org');
  await page.click('#new-client button[type=submit]');
  await page.waitForURL(/\/clients\/\d+$/);
  rotClientUrl = page.url();
  await page.fill('#api-label', 'harvester');
  await page.click('#generate-api button[type=submit]');
  await page.waitForSelector('#new-key');
  rotOld = await page.inputValue('#new-key');
  rotKeyId = (await page.innerText('#new-key-id')).trim();
  await page.goto(`${BASE}/credentials/api/${rotKeyId}`);
  assert((await page.innerText('#key-label')).trim() === 'harvester', 'key page label');
  await shot(page, 'desktop-12-key-page');
  await page.selectOption('#rotate-grace', '24h');
  await page.click('#rotate');
  await page.waitForSelector('#new-key');
  rotNew = await page.inputValue('#new-key');
  assert(/^hk_api_[0-9A-Za-z]{46}$/.test(rotNew) && rotNew !== rotOld, 'a new key');
  assert((await page.innerText('#old-expires')).length > 0, 'says when the old one stops');
  await page.click('#copy-key');
  await page.waitForFunction(() => document.getElementById('copy-status').textContent.includes('Copied'));
  assert(await page.evaluate(() => navigator.clipboard.readText()) === rotNew, 'clipboard holds the new key');
  await shot(page, 'desktop-13-rotated');
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  const n = await verify(copied);
  assert(n.valid === true, `new key: ${JSON.stringify(n)}`);
  const o = await verify(rotOld);
  assert(o.valid === true && String(o.key_id) === rotKeyId, `old key during the grace: ${JSON.stringify(o)}`);
  // Shown once: the key pages list prefixes only.
  await page.click('#done');
  await page.waitForSelector('#rotated-from');
  assert(!(await page.content()).includes(rotNew), 'new key page shows the key');
});

await test('expire the old key now: refused, the new one still valid', async () => {
  await page.goto(`${BASE}/credentials/api/${rotKeyId}`);
  assert(await page.locator('#replaced-by').count() === 1, 'links its replacement');
  assert((await page.innerText('#key-state')).includes('expires soon'), 'expires soon within the grace');
  await page.selectOption('#expiry-mode', 'now');
  await page.click('#expiry-form button[type=submit]');
  await page.waitForSelector('.alert-success');
  const o = await verifyUntil(rotOld, 'expired');
  assert(o.status === 'expired' && o.http === 401, `old key: ${JSON.stringify(o)}`);
  assert((await verify(rotNew)).valid === true, 'new key still valid');
  const r = keygen(['api:validate'], `${rotOld}\n`);
  assert(r.code === 1 && r.stdout.startsWith('expired'), `keygen: ${r.stdout}`);
  await shot(page, 'desktop-14-expired');
});

await test('edit a client, deactivate, reactivate (keys stay revoked) and generate again', async () => {
  await page.goto(rotClientUrl);
  await page.click('#edit-link');
  await page.waitForSelector('#edit-client');
  await page.fill('#name', 'Rotation Archive Ltd');
  await page.fill('#email', 'keys@example.org');
  await page.fill('#organization', 'City Archives');
  await page.fill('#idle_revoke', '30d');
  await page.click('#edit-client button[type=submit]');
  await page.waitForURL(rotClientUrl);
  assert((await page.innerText('#client-idle-revoke')).includes('30d'), 'idle policy shown');
  assert((await page.innerText('#client-email')).trim() === 'keys@example.org', 'e-mail shown');
  await page.click('#deactivate-link');
  await page.click('#confirm-deactivate');
  await page.waitForSelector('#reactivate-link');
  assert((await verifyUntil(rotNew, 'revoked')).status === 'revoked', 'deactivation revoked the key');
  await page.click('#reactivate-link');
  await page.waitForSelector('#confirm-reactivate');
  assert((await page.innerText('#reactivate-summary')).includes('stay revoked'), 'says the keys stay revoked');
  await shot(page, 'desktop-15-reactivate-confirm');
  await page.click('#confirm-reactivate');
  await page.waitForSelector('#all-revoked-note');
  assert((await page.content()).includes('generate new ones below'), 'offers to generate');
  assert((await verify(rotNew)).status === 'revoked', 'still revoked after reactivation');
  await page.fill('#api-label', 'harvester-2');
  await page.click('#generate-api button[type=submit]');
  await page.waitForSelector('#new-key');
  const fresh = await page.inputValue('#new-key');
  assert((await verify(fresh)).valid === true, 'the new key works');
  await page.click('#done');
  assert(await page.locator('#client-audit-table').count() === 1, 'client audit trail');
  assert((await page.content()).includes('client.reactivate'), 'reactivation on the trail');
  await shot(page, 'desktop-16-client-reactivated');
});

await test('an admin creates a viewer account', async () => {
  await page.click('a.nav-link[href="/admins"]');
  await page.fill('#new-username', 'vera');
  await page.fill('#new-password', `${PASSWORD}-vera`);
  await page.fill('#new-password2', `${PASSWORD}-vera`);
  await page.selectOption('#new-role', 'viewer');
  await page.click('#new-admin button[type=submit]');
  await page.waitForSelector('tr[data-admin="vera"]');
  assert((await page.content()).includes('Created account vera (viewer)'), 'flash');
  await shot(page, 'desktop-17-accounts');
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
  for (const path of ['/clients', '/usage', '/audit', '/admins', new URL(clientUrl).pathname,
    `/credentials/api/${rotKeyId}`, `${new URL(rotClientUrl).pathname}/edit`]) {
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


await test("a viewer's read-only view: every page, no forms, changes refused", async () => {
  await page.goto(`${BASE}/login`);
  await page.fill('#username', 'vera');
  await page.fill('#password', `${PASSWORD}-vera`);
  await page.click('button[type=submit]');
  await page.waitForURL(`${BASE}/`);
  assert((await page.innerText('#current-role')).trim() === 'viewer', 'role in the navbar');
  assert(await page.locator('a.nav-link[href="/admins"]').count() === 0, 'no accounts link');
  const paths = ['/', '/clients', new URL(rotClientUrl).pathname, `/credentials/api/${rotKeyId}`, '/usage', '/audit'];
  for (const path of paths) {
    await page.goto(`${BASE}${path}`);
    assert(await postForms(page) === 0, `${path} has forms for a viewer`);
    assert(await page.locator('a[href$="/revoke"], #edit-link, #reactivate-link, #deactivate-link').count() === 0,
      `${path} links to a change`);
  }
  await page.goto(`${BASE}${new URL(rotClientUrl).pathname}`);
  await shot(page, 'desktop-18-viewer-client');
  // Reading includes the exports.
  const csv = await page.evaluate(async () => (await fetch('/usage/export?format=csv')).text());
  assert(csv.startsWith('id,time,kind,credential_id'), 'usage export');
  const audit = await page.evaluate(async () => (await fetch('/audit/export?action=client.reactivate')).text());
  assert(audit.split('\n').filter((l) => l.includes('client.reactivate')).length === 1, 'audit export');
  // A change, even with the page's own token, is refused.
  const csrf = await page.locator('input[name=csrf]').first().inputValue();
  const status = await page.evaluate(async ([id, token]) => {
    const r = await fetch(`/credentials/api/${id}/revoke`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `csrf=${encodeURIComponent(token)}`, redirect: 'manual',
    });
    return r.status;
  }, [rotKeyId, csrf]);
  assert(status === 403, `revoke as a viewer: ${status}`);
  expectConsoleStatus(403);
  await page.goto(`${BASE}/admins`);
  assert((await page.innerText('h1')).includes('Not allowed'), 'accounts page refused');
  expectConsoleStatus(403);
  await shot(page, 'desktop-19-viewer-refused');
  const fresh = await verify(rotNew);
  assert(fresh.status === 'revoked', 'nothing changed');
  await page.goto(`${BASE}/`);
  await page.click('nav button[type=submit]:has-text("Log out")');
  await page.waitForURL(`${BASE}/login`);
});

await test('no console errors or CSP violations; the key never reached the server log', async () => {
  assert(problems.length === 0, problems.join('\n'));
  const log = readFileSync(SERVER_LOG, 'utf8');
  assert(!log.includes(key) && !log.includes('hk_api_') && !log.includes('hk_ai_'), 'a key in the server log');
  assert(!log.includes(rotNew) && !log.includes(rotOld), 'a rotated key in the server log');
  assert(log.includes('POST "/v1/verify" 200'), 'access log has the verify call');
});

await context.close();
rmSync(profile, { recursive: true, force: true });
console.log(`screenshots: ${SHOTS}`);
console.log(`Web browser tests: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
