// The dashboard's entry point: picks the page from the path, mounts it, and refreshes it every
// few seconds (paused while the tab is hidden). Each page module exports
// `mount(main, arg, who) -> {refresh(): Promise}`; `refresh` throws when the server cannot be
// reached. `who` is GET /api/v1/session: the top bar shows the principal, its role and "Sign
// out" when auth is on, and "Reload configuration" when the role may reload.

import { api, errorText, h, session } from './common.js';

const POLL_MS = 5000;

const ROUTES = [
  [/^\/$/, 'overview', () => import('./overview.js')],
  [/^\/alarms\/(.+)$/, 'overview', () => import('./alarm.js')],
  [/^\/groups\/(.+)$/, 'overview', () => import('./group.js')],
  [/^\/explore$/, 'explore', () => import('./explore.js')],
  [/^\/cluster$/, 'cluster', () => import('./cluster.js')],
];

const live = document.getElementById('live');
let refreshes = 0;

function setLive(ok, detail) {
  live.dataset.live = ok ? 'ok' : 'error';
  live.textContent = ok ? 'Live' : 'Disconnected';
  live.title = ok ? `Updated ${new Date().toLocaleTimeString()}; refreshes every ${POLL_MS / 1000} s` : detail;
}

const banner = document.getElementById('banner');

/** A message under the top bar (`kind`: ok or error), with details and a close button. */
function showBanner(kind, text, details = []) {
  banner.className = `banner banner-${kind}`;
  banner.dataset.kind = kind;
  banner.replaceChildren(
    h('div', { class: 'banner-body' },
      h('p', { class: 'banner-text', id: 'banner-text' }, text),
      details.length ? h('ul', { class: 'banner-details', id: 'banner-details' }, details.map((d) => h('li', null, d))) : null),
    h('button', { type: 'button', class: 'button button-quiet', onclick: () => { banner.hidden = true; } }, 'Dismiss'));
  banner.hidden = false;
}

function plural(n, noun) {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

/** POST /api/v1/reload and say how it went. */
async function reload(button, page) {
  button.disabled = true;
  try {
    const r = await api('/api/v1/reload', { method: 'POST' });
    if (r.ok) {
      const b = r.body;
      const parts = [];
      if (b.changed?.length) parts.push(`changed or new: ${b.changed.join(', ')}`);
      if (b.removed?.length) parts.push(`removed: ${b.removed.join(', ')}`);
      showBanner('ok', `Configuration reloaded: ${plural(b.alarms, 'alarm')}, ${plural(b.composite_alarms, 'composite alarm')}${parts.length ? '' : '; nothing changed'}.`, parts);
      page?.onchange?.();
    } else {
      showBanner('error', `Reload failed: ${errorText(r)}`, r.body?.error?.errors ?? []);
    }
  } catch (e) {
    showBanner('error', `Reload failed: ${e?.message ?? e}`);
  } finally {
    button.disabled = false;
  }
}

async function signOut(button) {
  button.disabled = true;
  const r = await api('/api/v1/session', { method: 'DELETE' }).catch(() => null);
  if (r && !r.ok && r.status !== 401) {
    button.disabled = false;
    showBanner('error', `Signing out failed: ${errorText(r)}`);
    return;
  }
  location.assign('/signin');
}

/** The top bar's controls for `who`; `page()` is the mounted page (for a refresh). */
function topbarControls(who, page) {
  const controls = document.getElementById('controls');
  const items = [];
  if (who?.can?.reload) {
    const button = h('button', { type: 'button', class: 'button', id: 'reload', title: 'Read the alarm and scaling files again (POST /api/v1/reload)' }, 'Reload configuration');
    button.addEventListener('click', () => reload(button, page()));
    items.push(button);
  }
  if (who?.auth_enabled) {
    const out = h('button', { type: 'button', class: 'button button-quiet', id: 'sign-out' }, 'Sign out');
    out.addEventListener('click', () => signOut(out));
    items.push(h('span', { class: 'who', id: 'who', title: who.expires ? `Session until ${new Date(who.expires).toLocaleString()}` : '' },
      h('span', { class: 'who-name', id: 'who-name' }, who.principal),
      h('span', { class: 'badge role-badge', id: 'who-role', dataset: { role: who.role } }, who.role)),
    out);
  }
  controls.replaceChildren(...items);
}

async function start() {
  const main = document.getElementById('app');
  // Who is signed in (a 401 goes to the sign-in page); the page still works without it.
  const who = await session().catch(() => null);
  let page = null;
  topbarControls(who, () => page);
  const route = ROUTES.find(([re]) => re.test(location.pathname));
  if (!route) {
    main.replaceChildren(h('p', { class: 'notice notice-error' }, `No page at ${location.pathname}.`));
    return;
  }
  const [re, nav, load] = route;
  document.querySelector(`[data-nav="${nav}"]`)?.setAttribute('aria-current', 'page');
  const match = location.pathname.match(re);
  const arg = match[1] === undefined ? undefined : decodeURIComponent(match[1]);
  page = (await load()).mount(main, arg, who);

  let timer = null;
  let running = null;
  let again = false;
  const refresh = () => {
    clearTimeout(timer);
    if (running) {
      again = true;
      return running;
    }
    running = page.refresh()
      .then(() => setLive(true))
      .catch((e) => setLive(false, String(e?.message ?? e)))
      .finally(() => {
        running = null;
        refreshes += 1;
        document.body.dataset.refreshes = String(refreshes);
        if (again) {
          again = false;
          refresh();
        } else {
          timer = setTimeout(() => (document.hidden ? null : refresh()), POLL_MS);
        }
      });
    return running;
  };
  page.onchange = refresh;
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) refresh();
  });
  await refresh();
}

start();
