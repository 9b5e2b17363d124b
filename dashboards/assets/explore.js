// Metric explorer (`/explore`): pick a namespace, metric and dimension set (from
// /api/v1/metrics), statistics and a period, and chart /api/v1/statistics. The choices live
// in the query string, so a chart can be bookmarked or shared.

import { PALETTE, align, gapped, timeChart } from './chart.js';
import {
  RANGES, card, errorText, fmtDims, getJSON, h, notice, query, segmented,
} from './common.js';

const STATISTICS = ['Average', 'Sum', 'Minimum', 'Maximum', 'SampleCount', 'p50', 'p90', 'p99'];
const PERIODS = [['auto', ''], ['1 s', '1'], ['10 s', '10'], ['1 min', '60'], ['5 min', '300'], ['1 h', '3600']];
const EXPLORE_RANGES = [...RANGES, ['7d', 604800]];
/** Re-read the series list this often (the chart itself follows every refresh). */
const LIST_EVERY_MS = 30000;
/** Pages of /api/v1/metrics (up to 500 series each) read at most for the pickers. */
const LIST_MAX_PAGES = 20;

/** The period "auto" picks: at least a minute, at most ~720 points. */
function autoPeriod(range) {
  return [60, 120, 300, 600, 900, 1800, 3600, 7200].find((p) => range / p <= 720) ?? 21600;
}

function dimsKey(dims) {
  return Object.entries(dims).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}=${v}`).join(',');
}

function select(id, label, onchange) {
  const el = h('select', { id, onchange });
  return [el, h('label', { for: id, class: 'field' }, h('span', null, label), el)];
}

function fill(sel, values, current, placeholder) {
  const opts = values.map(([text, value]) => h('option', { value }, text));
  sel.replaceChildren(...(opts.length ? opts : [h('option', { value: '' }, placeholder)]));
  sel.value = values.some(([, v]) => v === current) ? current : (values[0]?.[1] ?? '');
}

export function mount(main) {
  document.title = 'Metric explorer · Thermostat';
  const page = { refresh, onchange: null };
  const changed = () => page.onchange?.();
  let series = [];
  let listedAt = 0;
  let chart = null;
  let chartStats = '';

  const [nsSel, nsField] = select('namespace', 'Namespace', () => { query.set({ namespace: nsSel.value, metric: null, dims: null }); pick(); });
  const [metricSel, metricField] = select('metric', 'Metric', () => { query.set({ metric: metricSel.value, dims: null }); pick(); });
  const [dimsSel, dimsField] = select('dimensions', 'Dimensions', () => { query.set({ dims: dimsSel.value }); changed(); });
  const [periodSel, periodField] = select('period', 'Period', () => { query.set({ period: periodSel.value }); changed(); });
  fill(periodSel, PERIODS, query.get('period', ''));
  const chosen = new Set((query.get('stats') ?? 'Average,p99').split(',').filter(Boolean));
  const custom = h('input', {
    id: 'custom-stat', type: 'text', placeholder: 'p99.9, p95', size: 10,
    value: [...chosen].filter((s) => !STATISTICS.includes(s)).join(', '),
    onchange: () => { writeStats(); changed(); },
  });
  const boxes = STATISTICS.map((s) => h('label', { class: 'check' },
    h('input', { type: 'checkbox', value: s, checked: chosen.has(s), onchange: () => { writeStats(); changed(); } }), s));
  const rangeKey = EXPLORE_RANGES.some(([k]) => k === query.get('range')) ? query.get('range') : '1h';
  const pickRange = segmented(EXPLORE_RANGES.map(([k]) => [k, k]), rangeKey, (k) => { query.set({ range: k }); changed(); }, 'Time range');

  const status = h('div', { id: 'explore-status' });
  const listNote = h('p', { class: 'muted', id: 'explore-list-note' });
  const chartEl = h('div', { id: 'explore-chart' });
  const title = h('p', { class: 'muted metric-line', id: 'explore-title' });

  main.replaceChildren(
    h('div', { class: 'page-head' }, h('h1', null, 'Metric explorer')),
    card('Series', { id: 'picker' },
      h('div', { class: 'form-row' }, nsField, metricField, dimsField, periodField),
      h('div', { class: 'form-row checks' }, h('span', { class: 'field-label' }, 'Statistics'), boxes,
        h('label', { class: 'check' }, 'other:', custom)), listNote),
    card('Chart', { id: 'chart-card', extra: pickRange }, title, status, chartEl),
  );

  function statistics() {
    const picked = boxes.map((b) => b.firstChild).filter((i) => i.checked).map((i) => i.value);
    const extra = custom.value.split(/[\s,]+/).filter(Boolean);
    return [...new Set([...picked, ...extra])];
  }

  function writeStats() {
    query.set({ stats: statistics().join(',') });
  }

  /** Fills the selects from the series list and the query string. */
  function pick(notify = true) {
    const namespaces = [...new Set(series.map((s) => s.namespace))].sort();
    fill(nsSel, namespaces.map((n) => [n, n]), query.get('namespace'), 'No metrics yet');
    const inNs = series.filter((s) => s.namespace === nsSel.value);
    const metrics = [...new Set(inNs.map((s) => s.metric_name))].sort();
    fill(metricSel, metrics.map((m) => [m, m]), query.get('metric'), '—');
    const sets = inNs.filter((s) => s.metric_name === metricSel.value).map((s) => s.dimensions);
    fill(dimsSel, sets.map((d) => [fmtDims(d), dimsKey(d)]).sort(([a], [b]) => a.localeCompare(b)), query.get('dims'), '—');
    query.set({ namespace: nsSel.value, metric: metricSel.value, dims: dimsSel.value });
    if (notify) changed();
  }

  /**
   * Reads the series list page by page (`next_token`), at most LIST_MAX_PAGES pages.
   * Returns null when a page fails.
   */
  async function listSeries() {
    const all = [];
    let token = '';
    for (let page = 0; page < LIST_MAX_PAGES; page += 1) {
      const params = new URLSearchParams({ max_records: '500' });
      if (token) params.set('next_token', token);
      const r = await getJSON(`/api/v1/metrics?${params}`);
      if (!r.ok) return null;
      all.push(...r.body.metrics);
      token = r.body.next_token ?? '';
      if (!token) break;
    }
    listNote.replaceChildren(token ? `Showing the first ${all.length} series.` : '');
    return all;
  }

  async function refresh() {
    if (Date.now() - listedAt > LIST_EVERY_MS) {
      const listed = await listSeries();
      if (listed) {
        series = listed;
        listedAt = Date.now();
        pick(false);
      }
    }
    if (!nsSel.value || !metricSel.value) {
      status.replaceChildren(notice('No metrics have been pushed yet. Push some over gRPC (PutMetricData) and they appear here.'));
      return;
    }
    const stats = statistics();
    if (!stats.length) {
      status.replaceChildren(notice('Pick at least one statistic.'));
      return;
    }
    const range = EXPLORE_RANGES.find(([k]) => k === (query.get('range') ?? '1h'))?.[1] ?? 3600;
    const period = Number(periodSel.value) || autoPeriod(range);
    const end = new Date();
    const start = new Date(end.getTime() - range * 1000);
    const params = new URLSearchParams({
      namespace: nsSel.value,
      metric_name: metricSel.value,
      dimensions: dimsSel.value,
      statistics: stats.join(','),
      period_seconds: String(period),
      start: start.toISOString(),
      end: end.toISOString(),
    });
    const r = await getJSON(`/api/v1/statistics?${params}`);
    if (!r.ok) {
      status.replaceChildren(notice(errorText(r), 'error'));
      return;
    }
    status.replaceChildren();
    title.replaceChildren(h('span', { class: 'mono' }, `${nsSel.value} · ${metricSel.value}`),
      ` {${dimsSel.value || 'no dimensions'}} · ${period} s periods`);
    if (chartStats !== stats.join(',')) {
      chartStats = stats.join(',');
      chart?.destroy();
      chart = timeChart(chartEl, { series: stats.map((s, i) => ({ label: s, color: PALETTE[i % PALETTE.length] })) });
    }
    const lists = stats.map((s) => r.body.datapoints
      .filter((p) => p[s] !== undefined)
      .map((p) => ({ timestamp: p.timestamp, value: p[s] })));
    const { x, ys } = gapped(align(lists), period);
    chart.update({ x, ys, start: start.getTime() / 1000, end: end.getTime() / 1000 });
  }

  return page;
}
