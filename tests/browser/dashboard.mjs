#!/usr/bin/env node
// Browser test of Thermostat's web dashboard: Debian's headless Chromium driven by
// playwright-core (which never downloads a browser). It opens every page of a running server
// that has data, checks that alarms, states and charts are there, toggles an alarm with
// SetAlarmState and waits for the pages to change without a reload, and saves screenshots.
//
//   node tests/browser/dashboard.mjs --url http://127.0.0.1:8080 --screenshots target/screenshots \
//     --alarm web-cpu-high --instance 'api-latency-p99[Host=b]' --composite web-degraded \
//     --group web --toggle maintenance-switch --namespace Test/Dash --metric CPUUtilization
//
// Prints one `ok - <check>` line per check; exits 1 at the first failure (with a
// `failure-<check>.png` screenshot), 2 on bad arguments. tests/it/browser.rs runs it.

import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { chromium } from 'playwright-core';

const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const RED = [207, 34, 46];
const BLUE = [9, 105, 218];
const GREEN = [26, 127, 55];
const AMBER = [191, 135, 0];

const { values: opt } = parseArgs({
  options: {
    url: { type: 'string' },
    screenshots: { type: 'string', default: 'target/screenshots' },
    chromium: { type: 'string', default: process.env.THERMOSTAT_CHROMIUM ?? '/usr/bin/chromium' },
    alarm: { type: 'string' },
    instance: { type: 'string' },
    composite: { type: 'string' },
    group: { type: 'string' },
    toggle: { type: 'string' },
    namespace: { type: 'string' },
    metric: { type: 'string' },
    timeout: { type: 'string', default: '30000' },
  },
});
for (const k of ['url', 'alarm', 'instance', 'composite', 'group', 'toggle', 'namespace', 'metric']) {
  if (!opt[k]) {
    console.error(`dashboard.mjs: --${k} is required`);
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
const page = context.pages()[0] ?? await context.newPage();

const problems = [];
page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
page.on('console', (m) => {
  if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
});
page.on('request', (r) => {
  const u = r.url();
  if (!u.startsWith(base) && !u.startsWith('data:')) problems.push(`request outside the server: ${u}`);
});

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
  await page.screenshot({ path: path.join(opt.screenshots, `${name}.png`), fullPage: true });
}

async function open(pathAndQuery) {
  await page.goto(`${base}${pathAndQuery}`);
  // The first refresh has been applied.
  await page.waitForFunction(() => Number(document.body.dataset.refreshes ?? 0) >= 1);
}

/**
 * Pixels of (about) colour `rgb` with an alpha in [minAlpha, maxAlpha] on the canvases in
 * `selector` (the canvas is transparent: opaque strokes have alpha 255, shading about 25).
 */
function countColour(selector, rgb, [minAlpha, maxAlpha] = [200, 255]) {
  return page.evaluate(([sel, [r, g, b], lo, hi]) => {
    let n = 0;
    for (const c of document.querySelectorAll(`${sel} canvas`)) {
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      for (let i = 0; i < d.length; i += 4) {
        if (d[i + 3] >= lo && d[i + 3] <= hi && Math.abs(d[i] - r) < 24 && Math.abs(d[i + 1] - g) < 24 && Math.abs(d[i + 2] - b) < 24) n += 1;
      }
    }
    return n;
  }, [selector, rgb, minAlpha, maxAlpha]);
}

/**
 * Opaque pixels of colour `rgb` on the chart's canvas: `lines`, rows where they span over a
 * quarter of the width (a horizontal line such as a threshold), and `off`, those outside the
 * lines and their labels (such as the breaching datapoints' dots).
 */
function horizontal(selector, [r, g, b]) {
  return page.evaluate(([sel, rgb]) => {
    const c = document.querySelector(`${sel} canvas`);
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    const perRow = [];
    for (let y = 0; y < c.height; y += 1) {
      let n = 0;
      for (let x = 0; x < c.width; x += 1) {
        const i = (y * c.width + x) * 4;
        if (d[i + 3] > 200 && Math.abs(d[i] - rgb[0]) < 24 && Math.abs(d[i + 1] - rgb[1]) < 24 && Math.abs(d[i + 2] - rgb[2]) < 24) n += 1;
      }
      perRow.push(n);
    }
    const excluded = new Set();
    let lines = 0;
    perRow.forEach((n, y) => {
      if (n > c.width / 4) {
        lines += 1;
        for (let k = y - 16; k <= y + 3; k += 1) excluded.add(k);
      }
    });
    const off = perRow.reduce((sum, n, y) => sum + (excluded.has(y) ? 0 : n), 0);
    return { lines, off };
  }, [selector, [r, g, b]]);
}

/** Columns where opaque `rgb` covers over half the plot's height (vertical marker lines). */
function verticalLines(selector, [r, g, b]) {
  return page.evaluate(([sel, rgb]) => {
    const c = document.querySelector(`${sel} canvas`);
    const plotHeight = document.querySelector(`${sel} .u-over`).clientHeight * devicePixelRatio;
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let columns = 0;
    for (let x = 0; x < c.width; x += 1) {
      let n = 0;
      for (let y = 0; y < c.height; y += 1) {
        const i = (y * c.width + x) * 4;
        if (d[i + 3] > 200 && Math.abs(d[i] - rgb[0]) < 24 && Math.abs(d[i + 1] - rgb[1]) < 24 && Math.abs(d[i + 2] - rgb[2]) < 24) n += 1;
      }
      if (n > plotHeight / 2) columns += 1;
    }
    return columns;
  }, [selector, [r, g, b]]);
}

/** Columns of the canvas that are translucent `rgb` for more than half its height. */
function shadedColumns(selector, [r, g, b]) {
  return page.evaluate(([sel, rgb]) => {
    const c = document.querySelector(`${sel} canvas`);
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let columns = 0;
    for (let x = 0; x < c.width; x += 1) {
      let n = 0;
      for (let y = 0; y < c.height; y += 1) {
        const i = (y * c.width + x) * 4;
        if (d[i + 3] >= 10 && d[i + 3] <= 60 && Math.abs(d[i] - rgb[0]) < 24 && Math.abs(d[i + 1] - rgb[1]) < 24 && Math.abs(d[i + 2] - rgb[2]) < 24) n += 1;
      }
      if (n > c.height / 2) columns += 1;
    }
    return columns;
  }, [selector, [r, g, b]]);
}

/** Waits (at most 2 s) until at least 20 pixels of the colour are drawn. */
async function drawn(selector, colour, alpha, what) {
  let n = 0;
  for (let i = 0; i < 20 && n < 20; i += 1) {
    n = await countColour(selector, colour, alpha);
    if (n < 20) await page.waitForTimeout(100);
  }
  expect(n >= 20, `${selector}: no ${what} drawn (rgb(${colour}))`);
}

/** Waits until the chart in `selector` has datapoints and draws pixels of each colour. */
async function chartDrawn(selector, colours) {
  await page.waitForFunction((sel) => Number(document.querySelector(sel)?.dataset.points ?? 0) > 0, selector);
  expect(await page.locator(`${selector} canvas`).count() >= 1, `${selector}: no uPlot canvas`);
  for (const colour of colours) await drawn(selector, colour, [200, 255], 'series or marks');
}

/** Marks the document, to prove later that the page was not reloaded. */
async function mark() {
  const token = `t${Math.random()}`;
  await page.evaluate((t) => { window.__notReloaded = t; }, token);
  return async () => {
    const same = await page.evaluate((t) => window.__notReloaded === t
      && performance.getEntriesByType('navigation').length === 1, token);
    expect(same, 'the page was reloaded');
  };
}

async function setAlarmState(name, state, reason) {
  const r = await fetch(`${base}/api/v1/alarms/${encodeURIComponent(name)}/state`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ state_value: state, state_reason: reason }),
  });
  expect(r.ok, `SetAlarmState ${name} ${state}: HTTP ${r.status} ${await r.text()}`);
}

const row = (name) => `#alarms tbody tr[data-alarm="${name}"]`;

await check('overview lists every alarm with its state', async () => {
  await open('/');
  await page.waitForSelector(`${row(opt.alarm)}[data-state="ALARM"]`);
  for (const name of [opt.alarm, opt.instance, opt.composite, opt.toggle]) {
    expect(await page.locator(row(name)).count() === 1, `no row for ${name}`);
  }
  const badge = page.locator(`${row(opt.alarm)} .badge`);
  expect((await badge.textContent()).trim() === 'ALARM', 'the badge does not say ALARM');
  const bg = await badge.evaluate((el) => getComputedStyle(el).backgroundColor);
  expect(bg === `rgb(${RED.join(', ')})`, `ALARM is not red: ${bg}`);
  const okBadge = page.locator('#alarms .badge[data-state="OK"]').first();
  if (await okBadge.count()) {
    const c = await okBadge.evaluate((el) => getComputedStyle(el).color);
    expect(c === `rgb(${GREEN.join(', ')})`, `OK is not green: ${c}`);
  }
  const reason = await page.locator(`${row(opt.alarm)} .reason`).textContent();
  expect(reason.startsWith('Threshold Crossed'), `reason: ${reason}`);
  // ALARM rows come first.
  const first = await page.locator('#alarms tbody tr').first().getAttribute('data-state');
  expect(first === 'ALARM', `first row is ${first}`);
  expect(await page.locator('#live').getAttribute('data-live') === 'ok', 'not live');
});

await check('overview shows the group and notifications', async () => {
  const group = page.locator(`[data-group="${opt.group}"]`);
  await group.waitFor();
  const desired = Number(await group.locator('.size-desired .size-value').textContent());
  expect(desired >= 2, `desired ${desired}`);
  expect(await group.locator('.activities li').count() >= 1, 'no activity listed');
  await page.waitForSelector('#notifications tbody tr[data-status="delivered"]');
  await shot('overview');
});

await check('alarm page charts the metric with threshold, breaches and ALARM shading', async () => {
  await open(`/alarms/${encodeURIComponent(opt.alarm)}?range=15m`);
  await page.waitForSelector('#alarm-name .badge[data-state="ALARM"]');
  await chartDrawn('#metric-chart', [BLUE, RED]);
  const breaching = Number(await page.locator('#metric-chart').getAttribute('data-breaching'));
  expect(breaching > 0, 'no breaching datapoint in the data');
  const red = await horizontal('#metric-chart', RED);
  expect(red.lines >= 1, 'no threshold line');
  expect(red.off >= 20 * Math.min(breaching, 5), 'breaching datapoints are not marked');
  expect((await horizontal('#metric-chart', AMBER)).lines >= 1, 'no recovery threshold line');
  const line = await page.locator('#metric-line').textContent();
  expect(line.includes('> 70') && line.includes('recovers when back past 60'), `metric line: ${line}`);
  expect(await page.locator('#timeline .seg[data-state="ALARM"]').count() >= 1, 'no ALARM in the timeline');
  // The ALARM period is shaded: columns of translucent red across the plot's height.
  const shaded = await shadedColumns('#metric-chart', RED);
  expect(shaded >= 1, 'no ALARM period shaded');
  const history = await page.locator('#history tbody').textContent();
  expect(history.includes('Threshold Crossed'), 'no reason in the history');
  expect(await page.locator('#history tbody tr[data-type="StateUpdate"]').count() >= 1, 'no state updates');
  await shot('alarm');
});

await check('the range selector redraws without a reload', async () => {
  const same = await mark();
  const before = await page.locator('#metric-chart').getAttribute('data-points');
  await page.getByRole('button', { name: '1h', exact: true }).click();
  await page.waitForFunction(() => location.search.includes('range=1h'));
  await page.waitForFunction((b) => document.querySelector('#metric-chart').dataset.points !== b, before);
  expect(Number(await page.locator('#metric-chart').getAttribute('data-points')) > Number(before), 'no more datapoints over 1h');
  await same();
  await shot('alarm-1h');
});

await check('a per-series instance charts its series', async () => {
  await open(`/alarms/${encodeURIComponent(opt.instance)}`);
  await page.waitForSelector('#alarm-name .badge[data-state="ALARM"]');
  await chartDrawn('#metric-chart', [BLUE]);
  const line = await page.locator('#metric-line').textContent();
  expect(line.includes('p99'), `metric line: ${line}`);
  await shot('alarm-instance');
  // The per-series alarm itself lists its instances, this one among them.
  await open(`/alarms/${encodeURIComponent(opt.instance.split('[')[0])}`);
  await page.waitForSelector('#instances-card');
  const instances = await page.locator('#instances-card tbody').textContent();
  expect(instances.includes(opt.instance), `instances: ${instances}`);
  await shot('alarm-per-series');
});

await check('a composite alarm shows its rule and timeline', async () => {
  await open(`/alarms/${encodeURIComponent(opt.composite)}`);
  await page.waitForSelector('#rule-card');
  expect(await page.locator('#metric-card').isHidden(), 'a composite has no metric chart');
  const rule = await page.locator('#rule-card pre').textContent();
  expect(rule.includes(opt.alarm), `rule: ${rule}`);
  expect(await page.locator('#rule-alarms tbody tr').count() >= 2, 'no referenced alarms');
  expect(await page.locator('#timeline .seg').count() >= 1, 'no timeline');
  await shot('alarm-composite');
});

await check('group page charts capacity with activity markers', async () => {
  await open(`/groups/${encodeURIComponent(opt.group)}`);
  await chartDrawn('#capacity-chart', [BLUE, GREEN]);
  await page.waitForFunction(() => Number(document.querySelector('#capacity-chart').dataset.markers) >= 1);
  expect(await verticalLines('#capacity-chart', BLUE) >= 1, 'no scaling activity marked on the chart');
  const acts = await page.locator('#activities tbody').textContent();
  expect(acts.includes(opt.alarm) && acts.includes('triggered policy'), `activities: ${acts}`);
  const desired = await page.locator('[data-size="desired"] .tile-value').textContent();
  expect(Number(desired) >= 2, `desired tile: ${desired}`);
  await shot('group');
});

await check('explorer draws the chosen series and statistics', async () => {
  await open('/explore');
  await page.locator('#namespace').selectOption(opt.namespace);
  await page.locator('#metric').selectOption(opt.metric);
  await page.locator('label.check', { hasText: 'Maximum' }).locator('input').check();
  await page.waitForFunction(() => new URLSearchParams(location.search).get('stats')?.includes('Maximum'));
  await page.waitForFunction(() => document.querySelector('#explore-chart .u-legend')?.textContent.includes('Maximum'));
  await chartDrawn('#explore-chart', [BLUE]);
  const title = await page.locator('#explore-title').textContent();
  expect(title.includes(opt.metric), `title: ${title}`);
  await shot('explore');
});

await check('SetAlarmState changes the overview without a reload', async () => {
  await open('/');
  const before = await page.locator(row(opt.toggle)).getAttribute('data-state');
  expect(before !== 'ALARM', `${opt.toggle} is already in ALARM`);
  const same = await mark();
  await setAlarmState(opt.toggle, 'ALARM', 'Browser test: maintenance window opened');
  await page.waitForSelector(`${row(opt.toggle)}[data-state="ALARM"]`);
  const reason = await page.locator(`${row(opt.toggle)} .reason`).textContent();
  expect(reason === 'Browser test: maintenance window opened', `reason: ${reason}`);
  await same();
  await shot('overview-toggled');
});

await check('SetAlarmState changes the alarm page without a reload', async () => {
  await open(`/alarms/${encodeURIComponent(opt.toggle)}`);
  await page.waitForSelector('#alarm-name .badge[data-state="ALARM"]');
  const same = await mark();
  await setAlarmState(opt.toggle, 'OK', 'Browser test: maintenance window closed');
  await page.waitForSelector('#alarm-name .badge[data-state="OK"]');
  await page.waitForFunction(() => document.querySelector('#history tbody').textContent.includes('maintenance window closed'));
  expect(await page.locator('#timeline .seg[data-state="ALARM"]').count() >= 1, 'the ALARM stretch is not in the timeline');
  expect(await page.locator('#timeline .seg').last().getAttribute('data-state') === 'OK', 'the timeline does not end in OK');
  await same();
  await shot('alarm-toggled');
});

await check('no script errors and nothing loaded from elsewhere', async () => {
  expect(problems.length === 0, [...new Set(problems)].join('; '));
});

await context.close();
rmSync(userDataDir, { recursive: true, force: true });
console.log(`dashboard.mjs: ${passed} checks passed; screenshots in ${opt.screenshots}`);
