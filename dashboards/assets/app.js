// The dashboard's entry point: picks the page from the path, mounts it, and refreshes it every
// few seconds (paused while the tab is hidden). Each page module exports
// `mount(main) -> {refresh(): Promise}`; `refresh` throws when the server cannot be reached.

import { h } from './common.js';

const POLL_MS = 5000;

const ROUTES = [
  [/^\/$/, 'overview', () => import('./overview.js')],
  [/^\/alarms\/(.+)$/, 'overview', () => import('./alarm.js')],
  [/^\/groups\/(.+)$/, 'overview', () => import('./group.js')],
  [/^\/explore$/, 'explore', () => import('./explore.js')],
];

const live = document.getElementById('live');
let refreshes = 0;

function setLive(ok, detail) {
  live.dataset.live = ok ? 'ok' : 'error';
  live.textContent = ok ? 'Live' : 'Disconnected';
  live.title = ok ? `Updated ${new Date().toLocaleTimeString()}; refreshes every ${POLL_MS / 1000} s` : detail;
}

async function start() {
  const main = document.getElementById('app');
  const route = ROUTES.find(([re]) => re.test(location.pathname));
  if (!route) {
    main.replaceChildren(h('p', { class: 'notice notice-error' }, `No page at ${location.pathname}.`));
    return;
  }
  const [re, nav, load] = route;
  document.querySelector(`[data-nav="${nav}"]`)?.setAttribute('aria-current', 'page');
  const match = location.pathname.match(re);
  const arg = match[1] === undefined ? undefined : decodeURIComponent(match[1]);
  const page = (await load()).mount(main, arg);

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
