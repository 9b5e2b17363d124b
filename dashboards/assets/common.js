// Shared helpers of the dashboard's pages: fetching JSON, building DOM, formatting.
// Text from the server is only ever inserted as text (never as HTML).

/** The header that carries the session's CSRF token on requests that change state. */
export const CSRF_HEADER = 'x-csrf-token';

let who = null;

/**
 * Who is signed in: GET /api/v1/session, fetched once (again with `fresh`). Resolves to
 * {auth_enabled, principal, role, csrf_token, expires, can: {reload, set_alarm_state, backup}};
 * not signed in (401), it sends the browser to the sign-in page.
 */
export function session(fresh = false) {
  if (who && !fresh) return who;
  who = fetch('/api/v1/session', { headers: { accept: 'application/json' }, credentials: 'same-origin' })
    .then(async (resp) => {
      if (resp.status === 401) {
        toSignIn();
        return new Promise(() => {});
      }
      if (!resp.ok) throw new Error(`GET /api/v1/session: HTTP ${resp.status}`);
      return resp.json();
    })
    .catch((e) => {
      who = null;
      throw e;
    });
  return who;
}

let leaving = false;

/** Sends the browser to the sign-in page, to come back to this page. */
export function toSignIn() {
  if (leaving) return;
  leaving = true;
  location.assign(`/signin?next=${encodeURIComponent(location.pathname + location.search)}`);
}

/**
 * The one fetch of every page: `method` and a JSON `body`; resolves to {ok, status, body} and
 * never throws on HTTP errors. Requests that change state carry the session's CSRF token; a
 * 401 (the session expired or was revoked) sends the browser to the sign-in page.
 */
export async function api(url, { method = 'GET', body } = {}) {
  const changes = !['GET', 'HEAD'].includes(method);
  const send = (csrf) => {
    const headers = { accept: 'application/json' };
    if (csrf) headers[CSRF_HEADER] = csrf;
    if (body !== undefined) headers['content-type'] = 'application/json';
    return fetch(url, {
      method, headers, credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  };
  const csrf = changes ? (await session()).csrf_token : null;
  let resp = await send(csrf);
  if (resp.status === 403 && csrf) {
    // Signed in again in another tab: the cookie is now another session's, with another
    // token. (A 403 changed nothing, so sending again is safe.)
    const fresh = (await session(true)).csrf_token;
    if (fresh && fresh !== csrf) resp = await send(fresh);
  }
  if (resp.status === 401) toSignIn();
  let parsed = null;
  try {
    parsed = await resp.json();
  } catch {
    parsed = null;
  }
  return { ok: resp.ok, status: resp.status, body: parsed };
}

/** GET `url`; resolves to {ok, status, body} and never throws on HTTP errors. */
export function getJSON(url) {
  return api(url);
}

/** The API's error message of a failed {ok, status, body}. */
export function errorText(r) {
  return r.body?.error?.message ?? `HTTP ${r.status}`;
}

/** h('a', {href, class, dataset: {x: 1}, onclick}, 'text', child, [more]) */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v == null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

const STATE_CLASS = { OK: 'ok', ALARM: 'alarm', INSUFFICIENT_DATA: 'insufficient' };

/** CSS class suffix of an alarm state. */
export function stateClass(state) {
  return STATE_CLASS[state] ?? 'insufficient';
}

/** A coloured state badge: `OK`, `ALARM`, `INSUFFICIENT DATA`. */
export function stateBadge(state) {
  const s = state ?? 'INSUFFICIENT_DATA';
  return h('span', { class: `badge state-${stateClass(s)}`, dataset: { state: s } }, s.replace('_', ' '));
}

const STATUS_CLASS = {
  delivered: 'ok', Successful: 'ok', pending: 'warn', InProgress: 'warn',
  failed: 'alarm', Failed: 'alarm', Cancelled: 'insufficient', muted: 'insufficient',
};

/** A badge for a delivery or activity status. */
export function statusBadge(status) {
  return h('span', { class: `badge status-${STATUS_CLASS[status] ?? 'insufficient'}`, dataset: { status } }, status ?? '—');
}

/** "4 s", "3 min 20 s", "2 h 5 min", "3 d 4 h". */
export function fmtDuration(ms) {
  if (!Number.isFinite(ms)) return '—';
  let s = Math.max(0, Math.floor(ms / 1000));
  const d = Math.floor(s / 86400); s -= d * 86400;
  const hh = Math.floor(s / 3600); s -= hh * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  if (d) return `${d} d ${hh} h`;
  if (hh) return `${hh} h ${m} min`;
  if (m) return `${m} min ${s} s`;
  return `${s} s`;
}

function pad(n) {
  return String(n).padStart(2, '0');
}

/** Local time: "14:03:07" today, "2026-11-25 14:03" otherwise. */
export function fmtTime(t) {
  const d = t instanceof Date ? t : new Date(typeof t === 'number' ? t : Date.parse(t));
  if (Number.isNaN(d.getTime())) return '—';
  const now = new Date();
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  if (d.toDateString() === now.toDateString()) return time;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time.slice(0, 5)}`;
}

/** Local date and time: "2026-11-25 14:03:07". */
export function fmtDateTime(t) {
  const d = new Date(typeof t === 'number' ? t : Date.parse(t));
  if (Number.isNaN(d.getTime())) return '—';
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** A <time> element with the full timestamp as its tooltip. */
export function timeEl(iso) {
  return h('time', { datetime: iso, title: iso }, fmtTime(iso));
}

/** Up to 4 significant digits, no exponent for everyday values. */
export function fmtNum(v) {
  if (v == null || !Number.isFinite(v)) return '—';
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e9 || a < 1e-3)) return v.toExponential(2);
  return v.toLocaleString('en-US', { maximumSignificantDigits: a >= 1000 ? 7 : 4 });
}

/** Seconds since the epoch of an RFC 3339 time (uPlot's x values). */
export function secs(iso) {
  return Date.parse(iso) / 1000;
}

export function alarmHref(name) {
  return `/alarms/${encodeURIComponent(name)}`;
}

export function groupHref(name) {
  return `/groups/${encodeURIComponent(name)}`;
}

/** `Name=Value, Name2=Value2` of a {name: value} map. */
export function fmtDims(dims) {
  const parts = Object.entries(dims ?? {}).map(([k, v]) => `${k}=${v}`);
  return parts.length ? parts.join(', ') : 'no dimensions';
}

/** A card: <section class="card"><header><h2>title</h2>extra</header>children</section>. */
export function card(title, { id, extra } = {}, ...children) {
  return h('section', { class: 'card', id },
    h('header', { class: 'card-head' }, h('h2', null, title), extra),
    children);
}

/** A table from column titles and rows of cells (a row may be {attrs, cells}). */
export function table(columns, rows, { id, empty = 'Nothing yet.' } = {}) {
  const body = h('tbody');
  fillRows(body, columns.length, rows, empty);
  return h('table', { class: 'grid', id },
    h('thead', null, h('tr', null, columns.map((c) => h('th', null, c)))),
    body);
}

/** Replaces a tbody's rows. */
export function fillRows(tbody, width, rows, empty = 'Nothing yet.') {
  tbody.replaceChildren(...(rows.length
    ? rows.map((r) => (Array.isArray(r)
      ? h('tr', null, r.map((c) => h('td', null, c)))
      : h('tr', r.attrs, r.cells.map((c) => h('td', null, c)))))
    : [h('tr', { class: 'empty' }, h('td', { colspan: width }, empty))]));
}

/**
 * Range choices of the chart pages (seconds). Until one is chosen, a chart's range is fitted
 * to its data: the shortest of 15m, 30m and 1h that holds its oldest datapoint of the last hour.
 */
export const RANGES = [
  ['15m', 900], ['30m', 1800], ['1h', 3600], ['3h', 10800], ['24h', 86400],
];

/** The ranges a chart's default range is fitted to, shortest first (seconds). */
export const FITTED_RANGES = [900, 1800, 3600];

/** The range (seconds) fitted to data whose oldest point is `ageSeconds` old (null: none). */
export function fittedRange(ageSeconds) {
  if (ageSeconds == null || !Number.isFinite(ageSeconds)) return FITTED_RANGES[FITTED_RANGES.length - 1];
  return FITTED_RANGES.find((r) => ageSeconds <= r) ?? FITTED_RANGES[FITTED_RANGES.length - 1];
}

/**
 * A segmented control; `onpick(value)` is called with the chosen value. `current` may be null
 * (nothing pressed); the element's `show(value)` presses a value without calling `onpick`.
 */
export function segmented(choices, current, onpick, label) {
  const group = h('div', { class: 'segmented', role: 'group', 'aria-label': label });
  const render = (value) => {
    for (const b of group.children) b.setAttribute('aria-pressed', String(b.dataset.value === value));
  };
  for (const [text, value] of choices) {
    group.append(h('button', {
      type: 'button', dataset: { value },
      onclick: () => { render(value); onpick(value); },
    }, text));
  }
  render(current);
  group.show = render;
  return group;
}

/** Reads and writes the page's query string without reloading. */
export const query = {
  get(key, fallback = null) {
    return new URLSearchParams(location.search).get(key) ?? fallback;
  },
  set(values) {
    const p = new URLSearchParams(location.search);
    for (const [k, v] of Object.entries(values)) {
      if (v == null || v === '') p.delete(k); else p.set(k, v);
    }
    const qs = p.toString();
    history.replaceState(null, '', `${location.pathname}${qs ? `?${qs}` : ''}`);
  },
};

/** Presses the range a page's data were drawn over (`range_seconds`, `range_fitted`). */
export function showRange(control, d) {
  control.show(d.range_seconds == null ? null : String(d.range_seconds));
  control.dataset.fitted = String(Boolean(d.range_fitted));
  control.title = d.range_fitted ? 'Fitted to the data (15 min to 1 h); pick a range to keep it' : '';
}

/** Range seconds from the `range` query parameter (`1h`); null when none is chosen (fitted). */
export function rangeFromQuery() {
  const r = RANGES.find(([k]) => k === query.get('range'));
  return r ? r[1] : null;
}

/** A message block inside a card or page. */
export function notice(text, kind = 'info') {
  return h('p', { class: `notice notice-${kind}` }, text);
}
