// Overview (`/`): every alarm with its state, reason and time in state; every scaling group
// with its sizes and last activities; recent notifications with their delivery status.
// Data: GET /api/v1/dashboard/overview (a part that is not enabled is null).

import {
  alarmHref, card, errorText, fillRows, fmtDuration, getJSON, groupHref, h, notice,
  stateBadge, stateClass, statusBadge, table, timeEl,
} from './common.js';

const ORDER = { ALARM: 0, INSUFFICIENT_DATA: 1, OK: 2 };

function tile(label, value, kind) {
  return h('div', { class: `tile tile-${kind}` }, h('div', { class: 'tile-value' }, value), h('div', { class: 'tile-label' }, label));
}

function alarmRows(alarms, now) {
  return [...alarms]
    .sort((a, b) => (ORDER[a.state] ?? 1) - (ORDER[b.state] ?? 1) || a.name.localeCompare(b.name))
    .map((a) => ({
      attrs: { dataset: { alarm: a.name, state: a.state }, class: `row-${stateClass(a.state)}` },
      cells: [
        stateBadge(a.state),
        h('a', { href: alarmHref(a.name), class: 'strong' }, a.name),
        h('span', { class: 'muted' }, a.type),
        h('span', { class: 'reason', title: a.reason }, a.reason),
        a.state_updated ? h('span', { title: a.state_updated }, fmtDuration(now - Date.parse(a.state_updated))) : '—',
      ],
    }));
}

function groupCard(g) {
  const size = (label, value, cls) => h('div', { class: `size ${cls ?? ''}` }, h('span', { class: 'size-value' }, value ?? '—'), h('span', { class: 'size-label' }, label));
  const acts = (g.last_activities ?? []).slice(0, 3);
  return h('article', { class: 'group', dataset: { group: g.name } },
    h('div', { class: 'group-head' },
      h('a', { href: groupHref(g.name), class: 'strong' }, g.name),
      h('span', { class: 'muted' }, g.backend)),
    h('div', { class: 'sizes' },
      size('min', g.min_size),
      size('desired', g.desired_capacity, 'size-desired'),
      size('in service', g.in_service_capacity, 'size-inservice'),
      size('max', g.max_size)),
    g.warming_capacity ? h('p', { class: 'muted small' }, `${g.warming_capacity} warming up`) : null,
    acts.length
      ? h('ul', { class: 'activities' }, acts.map((a) => h('li', null,
        statusBadge(a.status), ' ',
        a.timestamp ? timeEl(new Date(a.timestamp).toISOString()) : null, ' ',
        h('span', { class: 'small', title: a.cause }, `${a.old_desired ?? '?'} → ${a.new_desired ?? '?'}`),
        a.alarm ? h('span', { class: 'muted small' }, ` · ${a.alarm}`) : null)))
      : h('p', { class: 'muted small' }, 'No scaling activities yet.'));
}

function notificationRows(list) {
  return list.map((n) => {
    const last = (n.attempts ?? []).at(-1);
    return {
      attrs: { dataset: { notification: n.id, status: n.status } },
      cells: [
        timeEl(n.created ?? n.transition_time),
        h('a', { href: alarmHref(n.alarm_name) }, n.alarm_name),
        stateBadge(n.new_state),
        h('span', { class: 'mono small', title: n.action }, `${n.kind}: ${n.action}`),
        statusBadge(n.status),
        h('span', { class: 'muted small', title: last?.error ?? '' }, `${(n.attempts ?? []).length} attempt${(n.attempts ?? []).length === 1 ? '' : 's'}`),
      ],
    };
  });
}

/** Failed for good, or still retrying after a failed attempt. */
function failing(n) {
  const failedOnce = (n.attempts ?? []).some((a) => a.outcome === 'failed');
  return n.status === 'failed' || (n.status === 'pending' && failedOnce);
}

export function mount(main) {
  document.title = 'Overview · Thermostat';
  const tiles = h('div', { class: 'tiles', id: 'summary' });
  const alarmsBody = h('div');
  const groupsBody = h('div', { class: 'groups', id: 'groups' });
  const notesBody = h('div');
  const alarmsTable = table(['State', 'Alarm', 'Type', 'Reason', 'In state for'], [], { id: 'alarms', empty: 'No alarms are configured.' });
  const notesTable = table(['Time', 'Alarm', 'State', 'Action', 'Delivery', 'Attempts'], [], { id: 'notifications', empty: 'No notifications yet.' });
  const error = h('div');
  main.replaceChildren(
    h('div', { class: 'page-head' }, h('h1', null, 'Overview')),
    error,
    tiles,
    card('Alarms', { id: 'alarms-card' }, alarmsBody),
    card('Scaling groups', { id: 'groups-card' }, groupsBody),
    card('Recent notifications', { id: 'notifications-card' }, notesBody),
  );

  async function refresh() {
    const r = await getJSON('/api/v1/dashboard/overview?notifications=20');
    if (!r.ok) {
      error.replaceChildren(notice(errorText(r), 'error'));
      return;
    }
    error.replaceChildren();
    const { alarms, groups, notifications } = r.body;
    const now = Date.parse(r.body.now);
    // The server lists at most 500 alarms (those in ALARM first) and counts every one.
    const counts = r.body.alarm_counts;
    const count = (s) => counts?.[s] ?? (alarms ?? []).filter((a) => a.state === s).length;
    tiles.replaceChildren(
      tile('in ALARM', alarms ? count('ALARM') : '—', 'alarm'),
      tile('OK', alarms ? count('OK') : '—', 'ok'),
      tile('insufficient data', alarms ? count('INSUFFICIENT_DATA') : '—', 'insufficient'),
      tile('scaling groups', groups ? groups.length : '—', 'neutral'),
      tile('deliveries failing', notifications ? notifications.filter(failing).length : '—', 'warn'),
    );
    if (alarms) {
      fillRows(alarmsTable.tBodies[0], 5, alarmRows(alarms, now), 'No alarms are configured.');
      const more = counts && counts.total > alarms.length
        ? [h('p', { class: 'muted small', id: 'alarms-more' }, `Showing ${alarms.length} of ${counts.total} alarms: those in ALARM first, then with insufficient data, then OK.`)]
        : [];
      alarmsBody.replaceChildren(alarmsTable, ...more);
    } else {
      alarmsBody.replaceChildren(notice('Alarms are not enabled on this server.'));
    }
    if (groups) {
      groupsBody.replaceChildren(...(groups.length ? groups.map(groupCard) : [notice('No scaling groups are configured.')]));
    } else {
      groupsBody.replaceChildren(notice('Scaling is not enabled on this server.'));
    }
    if (notifications) {
      fillRows(notesTable.tBodies[0], 6, notificationRows(notifications), 'No notifications yet.');
      notesBody.replaceChildren(notesTable);
    } else {
      notesBody.replaceChildren(notice('Notifications are not enabled on this server.'));
    }
  }

  return { refresh };
}
