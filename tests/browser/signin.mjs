#!/usr/bin/env node
// Browser test of the dashboard's sign-in (a server with `auth.tokens`): Debian's headless
// Chromium driven by playwright-core. A page without a session goes to the sign-in page; a
// wrong token is refused; a viewer sees the pages but no operator controls; the session cookie
// is HttpOnly and SameSite=Strict; a change sent with the cookie but without the CSRF token is
// refused; an operator sees the controls and sets an alarm's state and reloads through them;
// signing out ends the session. No page may have a Content-Security-Policy violation, a script
// error, or a request to elsewhere.
//
//   VIEWER_TOKEN=... OPERATOR_TOKEN=... node tests/browser/signin.mjs \
//     --url http://127.0.0.1:8080 --alarm auth-switch --screenshots target/screenshots
//
// The tokens come from the environment (not the command line, which other users can read).
// Prints one `ok - <check>` line per check and the path of every screenshot; exits 1 at the
// first failure (with a `failure-<check>.png` screenshot), 2 on bad arguments.
// tests/it/browser.rs runs it.

import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { chromium } from 'playwright-core';

const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

const { values: opt } = parseArgs({
  options: {
    url: { type: 'string' },
    alarm: { type: 'string' },
    screenshots: { type: 'string', default: 'target/screenshots' },
    chromium: { type: 'string', default: process.env.THERMOSTAT_CHROMIUM ?? '/usr/bin/chromium' },
    timeout: { type: 'string', default: '30000' },
  },
});
const viewerToken = process.env.VIEWER_TOKEN;
const operatorToken = process.env.OPERATOR_TOKEN;
for (const [k, v] of [['--url', opt.url], ['--alarm', opt.alarm], ['$VIEWER_TOKEN', viewerToken], ['$OPERATOR_TOKEN', operatorToken]]) {
  if (!v) {
    console.error(`signin.mjs: ${k} is required`);
    process.exit(2);
  }
}
const base = opt.url.replace(/\/$/, '');
const timeout = Number(opt.timeout);
mkdirSync(opt.screenshots, { recursive: true });

class CheckFailed extends Error {}

function expect(cond, message) {
  if (!cond) throw new CheckFailed(message);
}

const userDataDir = mkdtempSync(path.join(tmpdir(), 'thermostat-chromium-'));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: opt.chromium,
  headless: true,
  args: CHROMIUM_ARGS,
  viewport: { width: 1360, height: 900 },
  deviceScaleFactor: 1,
  timeout,
});
context.setDefaultTimeout(timeout);

// Content-Security-Policy violations, as the page's own `securitypolicyviolation` events (the
// console says so too, as an error).
const problems = [];
await context.exposeFunction('__thermostatCspViolation', (v) => problems.push(`CSP violation on ${v.page}: ${v.directive} blocked ${v.blocked} (${v.sample})`));
await context.addInitScript(() => {
  document.addEventListener('securitypolicyviolation', (e) => {
    window.__thermostatCspViolation({
      page: location.pathname, directive: e.violatedDirective, blocked: e.blockedURI, sample: e.sample,
    });
  });
});

const page = context.pages()[0] ?? await context.newPage();
// A refusal the test causes on purpose makes Chromium log the failed load as a console error:
// allowed only while `allowed` (a status) is set.
let allowed = null;
page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
page.on('console', (m) => {
  if (m.type() !== 'error') return;
  const text = m.text();
  if (allowed && text.startsWith('Failed to load resource') && allowed.some((s) => text.includes(`status of ${s}`))) return;
  problems.push(`console error on ${new URL(page.url()).pathname}: ${text}`);
});
page.on('request', (r) => {
  const u = r.url();
  if (!u.startsWith(base) && !u.startsWith('data:')) problems.push(`request outside the server: ${u}`);
});

async function expecting(statuses, body) {
  allowed = statuses;
  try {
    return await body();
  } finally {
    // Late console messages of the allowed kind arrive after the response.
    await page.waitForTimeout(200);
    allowed = null;
  }
}

let passed = 0;
async function check(name, body) {
  try {
    await body();
    passed += 1;
    console.log(`ok - ${name}`);
  } catch (e) {
    console.log(`not ok - ${name}: ${e instanceof CheckFailed ? e.message : (e.stack ?? e)}`);
    await page.screenshot({ path: path.join(opt.screenshots, `failure-${name.replace(/\W+/g, '-')}.png`), fullPage: true }).catch(() => {});
    await context.close();
    rmSync(userDataDir, { recursive: true, force: true });
    process.exit(1);
  }
}

async function shot(name) {
  const file = path.join(opt.screenshots, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`# screenshot ${path.resolve(file)}`);
}

const alarmPath = `/alarms/${encodeURIComponent(opt.alarm)}`;
const row = `#alarms tbody tr[data-alarm="${opt.alarm}"]`;

function pathOf(url = page.url()) {
  const u = new URL(url);
  return { origin: u.origin, path: u.pathname, next: u.searchParams.get('next') };
}

/** Waits until the page's first refresh is applied (the dashboard, not the sign-in page). */
async function refreshed() {
  await page.waitForFunction(() => Number(document.body.dataset.refreshes ?? 0) >= 1);
}

/** Signs in on the sign-in page shown now with `token`; waits for the next page. */
async function signIn(token) {
  await page.locator('#token').fill(token);
  await page.locator('#signin-submit').click();
  await page.waitForURL((u) => u.pathname !== '/signin');
  await refreshed();
}

/** A PUT of the alarm's state from the page with its cookie; `csrf`: send the token. */
function putFromPage(csrf) {
  return page.evaluate(async ([name, withCsrf]) => {
    const headers = { 'content-type': 'application/json' };
    if (withCsrf) {
      const me = await (await fetch('/api/v1/session')).json();
      headers['x-csrf-token'] = me.csrf_token;
    }
    const resp = await fetch(`/api/v1/alarms/${encodeURIComponent(name)}/state`, {
      method: 'PUT', headers, credentials: 'same-origin',
      body: JSON.stringify({ state_value: 'OK', state_reason: 'Browser test: sent from the page by hand' }),
    });
    return { status: resp.status, body: await resp.json() };
  }, [opt.alarm, csrf]);
}

async function apiAs(token, pathAndQuery) {
  const r = await fetch(`${base}${pathAndQuery}`, { headers: { authorization: `Bearer ${token}` } });
  expect(r.ok, `GET ${pathAndQuery}: HTTP ${r.status}`);
  return r.json();
}

await check('a page without a session goes to the sign-in page', async () => {
  const resp = await page.goto(`${base}${alarmPath}`);
  const at = pathOf();
  expect(at.path === '/signin' && at.next === alarmPath, `landed on ${page.url()}`);
  const h = resp.headers();
  const csp = h['content-security-policy'] ?? '';
  expect(/script-src 'self'(;|$)/.test(csp) && !csp.includes('unsafe'), `CSP: ${csp}`);
  expect(h['x-frame-options'] === 'DENY', `X-Frame-Options: ${h['x-frame-options']}`);
  expect(h['x-content-type-options'] === 'nosniff', 'no nosniff');
  expect(Boolean(h['referrer-policy']), 'no Referrer-Policy');
  expect(await page.locator('#token').getAttribute('type') === 'password', 'the token field is not a password field');
  await shot('signin');
});

await check('a wrong token shows an error', async () => {
  await expecting([401], async () => {
    await page.locator('#token').fill('tht_this_is_not_a_token_in_force');
    await page.locator('#signin-submit').click();
    await page.locator('#signin-error').waitFor({ state: 'visible' });
  });
  const text = await page.locator('#signin-error').textContent();
  expect(text.includes('not valid'), `error: ${text}`);
  expect(pathOf().path === '/signin', `left the sign-in page: ${page.url()}`);
  expect((await context.cookies(base)).every((c) => c.name !== 'thermostat_session'), 'a cookie was set');
  await shot('signin-wrong');
});

await check('the viewer signs in and sees the pages without operator controls', async () => {
  await signIn(viewerToken);
  expect(pathOf().path === alarmPath, `after signing in: ${page.url()}`);
  await page.waitForSelector('#alarm-name .badge');
  expect(await page.locator('#who-name').textContent() === 'dash', 'the top bar does not name the viewer');
  expect(await page.locator('#who-role').textContent() === 'viewer', 'the top bar does not show the role');
  expect(await page.locator('#sign-out').isVisible(), 'no Sign out button');
  expect(await page.locator('#set-state-card').count() === 0, 'a viewer sees the Set state control');
  expect(await page.locator('#reload').count() === 0, 'a viewer sees the Reload button');
  await page.goto(`${base}/`);
  await refreshed();
  await page.waitForSelector(row);
  expect(await page.locator('#reload').count() === 0, 'a viewer sees the Reload button on the overview');
  expect(await page.locator('#live').getAttribute('data-live') === 'ok', 'not live');
  await shot('overview-viewer');
});

await check('the session cookie is HttpOnly and SameSite=Strict', async () => {
  const cookie = (await context.cookies(base)).find((c) => c.name === 'thermostat_session');
  expect(cookie, 'no session cookie');
  expect(cookie.httpOnly === true, 'not HttpOnly');
  expect(cookie.sameSite === 'Strict', `SameSite=${cookie.sameSite}`);
  expect(cookie.path === '/', `Path=${cookie.path}`);
  expect(cookie.secure === base.startsWith('https:'), `Secure=${cookie.secure} over ${new URL(base).protocol}`);
  expect(cookie.expires > Date.now() / 1000 + 3600, `expires ${cookie.expires}`);
  expect(!(await page.evaluate(() => document.cookie)).includes('thermostat_session'), 'scripts can read the cookie');
});

await check("the server refuses a viewer's change", async () => {
  const r = await expecting([403], () => putFromPage(true));
  expect(r.status === 403 && r.body.error.message.includes('viewer'), `a viewer's PUT: ${JSON.stringify(r)}`);
});

await check('signing out returns to the sign-in page and ends the session', async () => {
  await expecting([401], async () => {
    await page.locator('#sign-out').click();
    await page.waitForURL((u) => u.pathname === '/signin');
  });
  expect((await context.cookies(base)).every((c) => c.name !== 'thermostat_session'), 'the cookie is still there');
  await page.goto(`${base}/`);
  expect(pathOf().path === '/signin', `after signing out, / is ${page.url()}`);
});

await check('the operator signs in and sees the controls', async () => {
  await page.goto(`${base}/signin?next=${encodeURIComponent(alarmPath)}`);
  await signIn(operatorToken);
  expect(pathOf().path === alarmPath, `after signing in: ${page.url()}`);
  expect(await page.locator('#who-role').textContent() === 'operator', 'the top bar does not show the role');
  await page.locator('#set-state-card').waitFor();
  expect(await page.locator('#reload').isVisible(), 'no Reload button');
  expect(await page.locator('#set-state-value option').count() === 3, 'the state select has not 3 states');
  await shot('alarm-operator');
});

await check('a change with the cookie but without the CSRF token is refused', async () => {
  const r = await expecting([403], () => putFromPage(false));
  expect(r.status === 403 && r.body.error.message.includes('x-csrf-token'), `no CSRF token: ${JSON.stringify(r)}`);
  const alarm = await apiAs(operatorToken, `/api/v1/alarms/${encodeURIComponent(opt.alarm)}`);
  expect(alarm.reason !== 'Browser test: sent from the page by hand', 'the refused change was made');
});

await check('an operator sets the alarm state through the page', async () => {
  await page.locator('#set-state-value').selectOption('ALARM');
  await page.locator('#set-state-reason').fill('Browser test: set by the operator');
  await page.locator('#set-state-submit').click();
  await page.waitForFunction(() => document.querySelector('#set-state-result')?.textContent.startsWith('Set to ALARM'));
  await page.waitForSelector('#alarm-name .badge[data-state="ALARM"]');
  const alarm = await apiAs(operatorToken, `/api/v1/alarms/${encodeURIComponent(opt.alarm)}`);
  expect(alarm.state === 'ALARM' && alarm.reason === 'Browser test: set by the operator', `the API says ${alarm.state}: ${alarm.reason}`);
  await shot('alarm-set-state');
});

await check('an operator reloads the configuration from the top bar', async () => {
  await page.goto(`${base}/`);
  await refreshed();
  await page.locator('#reload').click();
  await page.waitForSelector('#banner[data-kind="ok"]');
  const text = await page.locator('#banner-text').textContent();
  expect(text.startsWith('Configuration reloaded: 1 alarm,'), `banner: ${text}`);
  await shot('overview-operator-reloaded');
});

await check('the sign-in page sends a signed-in browser only to pages of this server', async () => {
  await page.goto(`${base}/signin?next=${encodeURIComponent('//example.com/x')}`);
  const at = pathOf();
  expect(at.origin === base && at.path === '/', `went to ${page.url()}`);
  await refreshed();
  await expecting([401], async () => {
    await page.locator('#sign-out').click();
    await page.waitForURL((u) => u.pathname === '/signin');
  });
});

await check('no CSP violations, script errors or requests elsewhere', async () => {
  expect(problems.length === 0, [...new Set(problems)].join('; '));
});

await context.close();
rmSync(userDataDir, { recursive: true, force: true });
console.log(`signin.mjs: ${passed} checks passed; screenshots in ${opt.screenshots}`);
