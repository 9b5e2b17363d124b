// Alarm page (`/alarms/{name}`): the metric over the chosen range with the threshold (and
// recovery threshold), breaching datapoints marked and ALARM periods shaded; the state
// timeline; the history with reasons. Composite alarms show their rule instead of a metric.
// Roles that may set alarm states (operator, admin) get a "Set state" control
// (PUT /api/v1/alarms/{name}/state, CloudWatch's SetAlarmState).
// An anomaly-detection alarm (one with a `threshold_metric_id`) charts its series with the
// model's band shaded around it and the datapoints outside the band marked.
// Data: GET /api/v1/dashboard/alarms/{name}?range_seconds=, and for anomaly-detection alarms
// GET /api/v1/alarms/{name}/band?from=&to= over the same range.

import { COLORS, gapped, timeChart, timelineStrip } from './chart.js';
import {
  RANGES, alarmHref, api, card, errorText, fillRows, fmtDateTime, fmtDims, fmtDuration, fmtNum, getJSON, h,
  notice, query, rangeFromQuery, secs, segmented, showRange, stateBadge, table, timeEl,
} from './common.js';

const OPERATORS = {
  GreaterThanThreshold: '>',
  GreaterThanOrEqualToThreshold: '≥',
  LessThanThreshold: '<',
  LessThanOrEqualToThreshold: '≤',
};

const BAND_OPERATORS = {
  LessThanLowerOrGreaterThanUpperThreshold: 'outside the band',
  GreaterThanUpperThreshold: 'above the band',
  LessThanLowerThreshold: 'below the band',
};

function reasonOf(item) {
  return item.data?.newState?.stateReason ?? '';
}

function historyRows(items) {
  return items.map((i) => ({
    attrs: { dataset: { type: i.item_type } },
    cells: [
      timeEl(i.timestamp),
      h('span', { class: 'muted' }, i.item_type),
      i.data?.newState ? stateBadge(i.data.newState.stateValue) : '',
      i.summary ?? '',
      h('span', { class: 'reason-full' }, reasonOf(i)),
    ],
  }));
}

const STATES = ['ALARM', 'OK', 'INSUFFICIENT_DATA'];

/**
 * The "Set state" card: a state, a reason, and a button; `done()` is called after a change
 * (the page refreshes at once).
 */
function setStateCard(name, done) {
  const value = h('select', { id: 'set-state-value', name: 'state_value' },
    STATES.map((s) => h('option', { value: s }, s.replace('_', ' '))));
  const reason = h('input', {
    type: 'text', id: 'set-state-reason', name: 'state_reason', required: true, maxlength: 1023,
    placeholder: 'Why, for the history (e.g. testing the pager)',
  });
  const submit = h('button', { type: 'submit', class: 'button button-primary', id: 'set-state-submit' }, 'Set state');
  const result = h('p', { class: 'small', id: 'set-state-result', role: 'status' });
  const form = h('form', { class: 'form-row', id: 'set-state-form' },
    h('label', { class: 'field' }, 'New state', value),
    h('label', { class: 'field grow' }, 'Reason', reason),
    submit);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const why = reason.value.trim();
    if (!why) {
      result.className = 'small notice-text-error';
      result.textContent = 'Give a reason: it goes into the history.';
      return;
    }
    submit.disabled = true;
    result.className = 'small muted';
    result.textContent = 'Setting…';
    try {
      const r = await api(`/api/v1/alarms/${encodeURIComponent(name)}/state`, {
        method: 'PUT', body: { state_value: value.value, state_reason: why },
      });
      if (r.ok) {
        result.className = 'small notice-text-ok';
        result.textContent = `Set to ${value.value.replace('_', ' ')}. The alarm's next evaluation may change it again.`;
        reason.value = '';
        done();
      } else {
        result.className = 'small notice-text-error';
        result.textContent = `Not set: ${errorText(r)}`;
      }
    } catch (e) {
      result.className = 'small notice-text-error';
      result.textContent = `Not set: ${e?.message ?? e}`;
    } finally {
      submit.disabled = false;
    }
  });
  return card('Set state', { id: 'set-state-card' },
    h('p', { class: 'muted small' }, 'Sets the alarm\'s state by hand (SetAlarmState), running its actions as a real change would; recorded in the history and the audit trail.'),
    form, result);
}

export function mount(main, name, who) {
  document.title = `${name} · Thermostat`;
  let range = rangeFromQuery();
  const page = { refresh, onchange: null };

  const badge = h('span');
  const reason = h('p', { class: 'lead', id: 'reason' });
  const since = h('p', { class: 'muted', id: 'since' });
  const error = h('div');
  const pickRange = segmented(RANGES.map(([k, v]) => [k, String(v)]), range == null ? null : String(range), (v) => {
    range = Number(v);
    query.set({ range: RANGES.find(([, s]) => s === range)?.[0] });
    page.onchange?.();
  }, 'Time range');

  const metricLine = h('p', { class: 'muted metric-line', id: 'metric-line' });
  const chartEl = h('div', { id: 'metric-chart' });
  const chartNote = h('p', { class: 'muted small' });
  const legend = h('div', { class: 'chart-key' },
    h('span', { class: 'key key-alarm-shade' }, 'ALARM'),
    h('span', { class: 'key key-breach' }, 'breaching datapoint'),
    h('span', { class: 'key key-threshold', id: 'threshold-key' }, 'threshold'),
    h('span', { class: 'key key-recovery', id: 'recovery-key' }, 'recovery threshold'),
    h('span', { class: 'key key-band', id: 'band-key', hidden: true }, 'expected band'));
  const timelineEl = h('div', { id: 'timeline' });
  const timelineAxis = h('div', { class: 'timeline-axis muted small' });
  const historyTable = table(['Time', 'Type', 'New state', 'Summary', 'Reason'], [], { id: 'history', empty: 'No history yet.' });
  const extra = h('div');
  const config = h('pre', { class: 'config' });
  const metricCard = card('Metric', { id: 'metric-card', extra: pickRange }, metricLine, chartEl, legend, chartNote);

  const timelineCard = card('State timeline', { id: 'timeline-card' }, timelineEl, timelineAxis,
    h('div', { class: 'timeline-key' },
      h('span', { class: 'key key-alarm' }, 'ALARM'),
      h('span', { class: 'key key-ok' }, 'OK'),
      h('span', { class: 'key key-insufficient' }, 'INSUFFICIENT DATA'),
      h('span', { class: 'key key-none' }, 'before the alarm existed')));
  const historyMore = h('p', { class: 'muted small', id: 'history-more' });
  const historyCard = card('History', { id: 'history-card' }, historyTable, historyMore);

  main.replaceChildren(
    h('div', { class: 'page-head' },
      h('a', { href: '/', class: 'back' }, '← Overview'),
      h('h1', { id: 'alarm-name' }, name, ' ', badge)),
    reason, since, error,
    metricCard,
    extra,
    timelineCard,
    historyCard,
    ...(who?.can?.set_alarm_state ? [setStateCard(name, () => page.onchange?.())] : []),
    card('Configuration', { id: 'config-card' }, h('details', null, h('summary', null, 'Show the configuration as the server holds it'), config)),
  );

  let chart = null;
  let shownConfig = null;

  async function refresh() {
    // Until a range is chosen the server fits it to the data (15 min to 1 h).
    const r = await getJSON(`/api/v1/dashboard/alarms/${encodeURIComponent(name)}${range == null ? '' : `?range_seconds=${range}`}`);
    if (!r.ok) {
      error.replaceChildren(notice(r.status === 404 ? errorText(r) : `Could not load the alarm: ${errorText(r)}`, 'error'));
      return;
    }
    error.replaceChildren();
    const d = r.body;
    const a = d.alarm;
    showRange(pickRange, d);
    badge.replaceChildren(stateBadge(a.state));
    reason.textContent = a.reason;
    since.textContent = a.state_updated
      ? `In ${a.state.replace('_', ' ')} for ${fmtDuration(Date.parse(d.now) - Date.parse(a.state_updated))}, since ${fmtDateTime(a.state_updated)}.`
      : '';

    if (d.kind === 'composite') {
      metricCard.hidden = true;
      extra.replaceChildren(card('Rule', { id: 'rule-card' },
        h('pre', { class: 'rule' }, d.rule.text),
        table(['State', 'Alarm'], d.rule.alarms.map((c) => [stateBadge(c.state), h('a', { href: alarmHref(c.name) }, c.name)]), { id: 'rule-alarms' })));
    } else if (a.configuration?.threshold_metric_id) {
      const b = await getJSON(`/api/v1/alarms/${encodeURIComponent(name)}/band?from=${encodeURIComponent(d.start)}&to=${encodeURIComponent(d.end)}`);
      if (!b.ok) {
        error.replaceChildren(notice(`Could not load the anomaly band: ${errorText(b)}`, 'error'));
        return;
      }
      drawBand(d, b.body);
      extra.replaceChildren();
    } else {
      drawMetric(d);
      extra.replaceChildren(...(d.instances.length
        ? [card('Instances', { id: 'instances-card' },
          h('p', { class: 'muted small' }, 'A "*" dimension makes one alarm per matching series; each instance has its own chart, timeline and history.'),
          table(['State', 'Instance'], d.instances.map((i) => [stateBadge(i.state), h('a', { href: alarmHref(i.name) }, i.name)])),
          d.instances_total > d.instances.length
            ? h('p', { class: 'muted small' }, `Showing ${d.instances.length} of ${d.instances_total} instances.`)
            : null)]
        : []));
    }

    // A per-series alarm with instances: its instances have the series, timelines and history.
    const perSeries = d.kind === 'metric' && Object.values(d.metric.dimensions).includes('*') && d.instances.length > 0;
    for (const el of [chartEl, legend, timelineCard, historyCard]) el.hidden = perSeries;
    timelineStrip(timelineEl, d.timeline, d.start, d.end);
    timelineAxis.replaceChildren(h('span', null, timeEl(d.start)), h('span', null, timeEl(d.end)));
    fillRows(historyTable.tBodies[0], 5, historyRows(d.history), 'No history yet.');
    historyMore.textContent = d.history_more
      ? `The newest ${d.history.length} items; older ones: GET /api/v1/alarms/${encodeURIComponent(name)}/history (paginated).`
      : '';
    const text = JSON.stringify(a.configuration, null, 2);
    if (text !== shownConfig) {
      config.textContent = text;
      shownConfig = text;
    }
  }

  /** An anomaly-detection alarm: its series, the model's band, the datapoints outside it. */
  function drawBand(d, b) {
    const op = BAND_OPERATORS[b.comparison_operator] ?? b.comparison_operator;
    const model = b.model;
    metricLine.replaceChildren(
      h('span', { class: 'mono' }, `ANOMALY_DETECTION_BAND(${b.metric_id}, ${fmtNum(b.k)})`),
      ` over ${b.period_seconds} s periods · ALARM when ${b.metric_id} is ${op} · `,
      h('span', { id: 'band-model', dataset: { state: model?.state ?? 'NONE' } }, model
        ? (model.insufficient_data_reason
          ? `model ${model.state}: ${model.insufficient_data_reason}`
          : `model ${model.state}, ${model.seasonality} seasonality, trained on ${model.points} datapoints at ${fmtDateTime(model.trained_at)}`)
        : 'model not trained yet'));
    chart ??= timeChart(chartEl, {
      series: [{ label: b.metric_id, color: COLORS.accent }],
      emptyText: 'No datapoints in this range.',
    });
    const pts = b.points;
    const x = pts.map((p) => secs(p.t));
    const series = gapped({ x: pts.filter((p) => p.value != null).map((p) => secs(p.t)), ys: [pts.filter((p) => p.value != null).map((p) => p.value)] }, b.period_seconds);
    const outside = pts.filter((p) => p.outside);
    for (const id of ['threshold-key', 'recovery-key']) document.getElementById(id).hidden = true;
    document.getElementById('band-key').hidden = false;
    chart.update({
      ...series,
      start: secs(d.start),
      end: secs(d.end),
      band: { x, lower: pts.map((p) => p.lower), upper: pts.map((p) => p.upper) },
      spans: d.timeline.filter((s) => s.state === 'ALARM').map((s) => ({ from: secs(s.start), to: secs(s.end), color: COLORS.alarmShade })),
      marks: outside.map((p) => ({ x: secs(p.t), y: p.value, color: COLORS.alarm })),
    });
    chartEl.dataset.band = String(pts.filter((p) => p.lower != null).length);
    chartEl.dataset.outside = String(outside.length);
    chartEl.dataset.breaching = String(outside.length);
    chartNote.textContent = model?.insufficient_data_reason
      ? 'No band until the model has seen enough data.'
      : `The band is the model's expected value ± ${fmtNum(b.k)} standard deviations (docs/anomaly.md).`;
  }

  function drawMetric(d) {
    const m = d.metric;
    const op = OPERATORS[d.comparison_operator] ?? d.comparison_operator;
    metricLine.replaceChildren(
      h('span', { class: 'mono' }, `${m.namespace} · ${m.metric_name}`), ` {${fmtDims(m.dimensions)}} · `,
      h('strong', null, m.statistic), ` over ${m.period_seconds} s periods · ALARM when ${m.statistic} ${op} ${fmtNum(d.threshold)}`,
      d.ok_threshold != null ? ` (recovers when back past ${fmtNum(d.ok_threshold)})` : '');
    chart ??= timeChart(chartEl, {
      series: [{ label: m.statistic, color: COLORS.accent }],
      emptyText: Object.values(m.dimensions).includes('*')
        ? 'One alarm instance per matching series; no series has data yet.'
        : 'No datapoints in this range.',
    });
    const series = gapped({ x: d.datapoints.map((p) => secs(p.timestamp)), ys: [d.datapoints.map((p) => p.value)] }, d.period_seconds);
    const hlines = [{ y: d.threshold, color: COLORS.alarm, label: 'threshold' }];
    if (d.ok_threshold != null) hlines.push({ y: d.ok_threshold, color: COLORS.warn, label: 'recovery' });
    document.getElementById('recovery-key').hidden = d.ok_threshold == null;
    chart.update({
      ...series,
      start: secs(d.start),
      end: secs(d.end),
      hlines,
      spans: d.timeline.filter((s) => s.state === 'ALARM').map((s) => ({ from: secs(s.start), to: secs(s.end), color: COLORS.alarmShade })),
      marks: d.datapoints.filter((p) => p.breaching).map((p) => ({ x: secs(p.timestamp), y: p.value, color: COLORS.alarm })),
    });
    chartEl.dataset.breaching = String(d.datapoints.filter((p) => p.breaching).length);
    chartNote.textContent = d.period_seconds !== m.period_seconds
      ? `Drawn at ${d.period_seconds} s periods to fit the range; the alarm evaluates ${m.period_seconds} s periods.`
      : '';
  }

  return page;
}
