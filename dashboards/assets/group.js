// Scaling group page (`/groups/{name}`): desired vs in-service capacity over time (with the
// min and max sizes), each scaling activity marked with its cause, and the activity list.
// Data: GET /api/v1/dashboard/groups/{name}?range_seconds=; the capacity series are the
// AWS/AutoScaling metrics the scaling engine records every 10 seconds.

import { COLORS, align, gapped, timeChart } from './chart.js';
import {
  RANGES, alarmHref, card, errorText, fillRows, fmtTime, getJSON, h, notice, query, rangeFromQuery,
  secs, segmented, showRange, statusBadge, table, timeEl,
} from './common.js';

const SERIES = [
  ['GroupDesiredCapacity', 'desired', COLORS.accent, undefined, 2.5],
  ['GroupInServiceInstances', 'in service', COLORS.ok, undefined, 2],
  ['GroupMinSize', 'min size', COLORS.insufficient, [4, 4], 1],
  ['GroupMaxSize', 'max size', COLORS.insufficient, [8, 4], 1],
];

function activityRows(list) {
  return list.map((a) => ({
    attrs: { dataset: { status: a.status } },
    cells: [
      a.time ? timeEl(a.time) : '—',
      statusBadge(a.status),
      h('span', { class: 'strong' }, `${a.old_desired ?? '?'} → ${a.new_desired ?? '?'}`),
      a.alarm
        ? h('span', null, h('a', { href: alarmHref(a.alarm) }, a.alarm), h('span', { class: 'muted' }, ` · ${a.policy ?? ''}`))
        : h('span', { class: 'muted' }, a.scheduled_action ? `scheduled: ${a.scheduled_action}` : (a.policy ?? '—')),
      h('span', { class: 'reason-full' }, a.cause ?? a.status_message ?? ''),
    ],
  }));
}

/** One activity on one line: time, status, change, trigger and cause (a marker's hover text). */
function activityDetail(a) {
  const trigger = a.alarm ? `${a.alarm} · ${a.policy ?? ''}` : (a.scheduled_action ? `scheduled: ${a.scheduled_action}` : (a.policy ?? ''));
  const cause = a.cause ?? a.status_message ?? '';
  return [`${fmtTime(a.time)} ${a.old_desired ?? '?'}→${a.new_desired ?? '?'} (${a.status})`, trigger, cause].filter(Boolean).join(' · ');
}

export function mount(main, name) {
  document.title = `${name} · Thermostat`;
  let range = rangeFromQuery();
  const page = { refresh, onchange: null };

  const error = h('div');
  const sizes = h('div', { class: 'tiles', id: 'sizes' });
  const sub = h('p', { class: 'muted', id: 'group-sub' });
  const chartEl = h('div', { id: 'capacity-chart' });
  const pickRange = segmented(RANGES.map(([k, v]) => [k, String(v)]), range == null ? null : String(range), (v) => {
    range = Number(v);
    query.set({ range: RANGES.find(([, s]) => s === range)?.[0] });
    page.onchange?.();
  }, 'Time range');
  const activitiesTable = table(['Time', 'Status', 'Desired', 'Trigger', 'Cause'], [], { id: 'activities', empty: 'No scaling activities yet.' });
  main.replaceChildren(
    h('div', { class: 'page-head' },
      h('a', { href: '/', class: 'back' }, '← Overview'),
      h('h1', { id: 'group-name' }, name)),
    sub, error, sizes,
    card('Capacity', { id: 'capacity-card', extra: pickRange }, chartEl,
      h('p', { class: 'muted small' }, 'Dashed vertical lines mark scaling activities; hover a line or its label for the details.')),
    card('Scaling activities', { id: 'activities-card' }, activitiesTable),
  );

  const chart = timeChart(chartEl, {
    series: SERIES.map(([, label, color, dash, width]) => ({ label, color, dash, width, stepped: true })),
    zero: true,
    integer: true,
    emptyText: 'No capacity history recorded in this range yet.',
  });

  async function refresh() {
    // Until a range is chosen the server fits it to the data (15 min to 1 h).
    const r = await getJSON(`/api/v1/dashboard/groups/${encodeURIComponent(name)}${range == null ? '' : `?range_seconds=${range}`}`);
    if (!r.ok) {
      error.replaceChildren(notice(errorText(r), 'error'));
      return;
    }
    error.replaceChildren();
    const d = r.body;
    const g = d.group;
    showRange(pickRange, d);
    sub.textContent = `${g.backend} backend${g.cooldown_until ? ` · cooling down until ${fmtTime(g.cooldown_until)}` : ''}`;
    const tile = (label, value, kind) => h('div', { class: `tile tile-${kind}`, dataset: { size: label } },
      h('div', { class: 'tile-value' }, value ?? '—'), h('div', { class: 'tile-label' }, label));
    sizes.replaceChildren(
      tile('min', g.min_size, 'neutral'),
      tile('desired', g.desired_capacity, 'accent'),
      tile('in service', g.in_service_capacity, 'ok'),
      tile('warming up', g.warming_capacity ?? 0, 'warn'),
      tile('max', g.max_size, 'neutral'),
    );

    const { x, ys } = gapped(align(SERIES.map(([metric]) => d.capacity[metric] ?? [])), d.period_seconds);
    const start = secs(d.start);
    const end = secs(d.end);
    const inRange = d.activities.filter((a) => a.time && secs(a.time) >= start && secs(a.time) <= end);
    chart.update({
      x,
      ys,
      start,
      end,
      markers: inRange.map((a) => ({
        x: secs(a.time),
        color: a.status === 'Successful' ? COLORS.accent : COLORS.alarm,
        label: `${a.old_desired ?? '?'}→${a.new_desired ?? '?'}`,
        from: a.old_desired,
        to: a.new_desired,
        detail: activityDetail(a),
      })),
    });
    chartEl.dataset.markers = String(inRange.length);
    fillRows(activitiesTable.tBodies[0], 5, activityRows(d.activities), 'No scaling activities yet.');
  }

  return page;
}
