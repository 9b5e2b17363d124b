// Metric explorer (`/explore`): pick a namespace, metric and dimension set (from
// /api/v1/metrics), statistics and a period, and chart /api/v1/statistics. The choices live
// in the query string, so a chart can be bookmarked or shared.
//
// Metric math: series added from the picker get the ids m1, m2, … and an expression over
// them (`m1/m2*100`, `SUM(METRICS())`) is charted through POST /api/v1/metric-data
// (CloudWatch's GetMetricData), at the chart's period and range.

import { PALETTE, align, gapped, timeChart } from './chart.js';
import {
  RANGES, api, card, errorText, fittedRange, fmtDims, getJSON, h, notice, query, segmented,
} from './common.js';

const STATISTICS = ['Average', 'Sum', 'Minimum', 'Maximum', 'SampleCount', 'p50', 'p90', 'p99'];
const PERIODS = [['auto', ''], ['1 s', '1'], ['10 s', '10'], ['1 min', '60'], ['5 min', '300'], ['1 h', '3600']];
const EXPLORE_RANGES = [...RANGES, ['7d', 604800]];
/** Re-read the series list this often (the chart itself follows every refresh). */
const LIST_EVERY_MS = 30000;
/** Pages of /api/v1/metrics (up to 500 series each) read at most for the pickers. */
const LIST_MAX_PAGES = 20;

/**
 * The period "auto" picks: at least a minute, at most ~720 points; for a capacity gauge
 * (recorded every 10 s) 10 s while that is at most 720 points, so that its steps stay steps.
 */
function autoPeriod(range, kind) {
  if (kind === 'gauge' && range / 10 <= 720) return 10;
  return [60, 120, 300, 600, 900, 1800, 3600, 7200].find((p) => range / p <= 720) ?? 21600;
}

/**
 * What a series measures, from its namespace and name (the series list has no units):
 * `gauge` (a scaling group's capacity: AWS/AutoScaling Group…Capacity, …Instances, …Size),
 * `latency` (a time), `utilization` (a percentage such as CPU) or `other`.
 */
export function seriesKind(namespace, metric) {
  if (namespace === 'AWS/AutoScaling' && /^Group[A-Za-z]*(Capacity|Instances|Size)$/.test(metric ?? '')) return 'gauge';
  if (/latency|duration|response.?time|elapsed/i.test(metric ?? '')) return 'latency';
  if (/cpu|utili[sz]ation|percent/i.test(metric ?? '')) return 'utilization';
  return 'other';
}

/**
 * The statistics a series opens with: Average and p99 for a latency, Average for a
 * utilization, Maximum for a capacity gauge (never a percentile: a percentile or an average of
 * a step function over a period turns its steps into ramps).
 */
const DEFAULT_STATISTICS = {
  gauge: ['Maximum'], latency: ['Average', 'p99'], utilization: ['Average'], other: ['Average'],
};

/** The explorer's first series: a latency, else a utilization (CPU), else the first listed. */
function preferred(list) {
  for (const kind of ['latency', 'utilization']) {
    const s = list.find((m) => seriesKind(m.namespace, m.metric_name) === kind);
    if (s) return s;
  }
  return list[0];
}

function isPercentile(statistic) {
  return /^p\d/i.test(statistic);
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
  let statsShownFor = null;

  // Another series opens with the statistics that fit it.
  const [nsSel, nsField] = select('namespace', 'Namespace', () => { query.set({ namespace: nsSel.value, metric: null, dims: null, stats: null }); pick(); });
  const [metricSel, metricField] = select('metric', 'Metric', () => { query.set({ metric: metricSel.value, dims: null, stats: null }); pick(); });
  const [dimsSel, dimsField] = select('dimensions', 'Dimensions', () => { query.set({ dims: dimsSel.value }); changed(); });
  const [periodSel, periodField] = select('period', 'Period', () => { query.set({ period: periodSel.value }); changed(); });
  fill(periodSel, PERIODS, query.get('period', ''));
  const custom = h('input', {
    id: 'custom-stat', type: 'text', placeholder: 'p99.9, p95', size: 10,
    onchange: () => { writeStats(); changed(); },
  });
  const boxes = STATISTICS.map((s) => h('label', { class: 'check' },
    h('input', { type: 'checkbox', value: s, onchange: () => { writeStats(); changed(); } }), s));
  // Until a range is chosen, it is fitted to the series (15 min to 1 h).
  const rangeKey = EXPLORE_RANGES.some(([k]) => k === query.get('range')) ? query.get('range') : null;
  const pickRange = segmented(EXPLORE_RANGES.map(([k]) => [k, k]), rangeKey, (k) => { query.set({ range: k }); changed(); }, 'Time range');
  const statsNote = h('p', { class: 'muted small', id: 'stats-note' });

  const status = h('div', { id: 'explore-status' });
  const listNote = h('p', { class: 'muted', id: 'explore-list-note' });
  const chartEl = h('div', { id: 'explore-chart' });
  const title = h('p', { class: 'muted metric-line', id: 'explore-title' });

  // Metric math: {id, namespace, metric, dims ("k=v,…"), stat} per series added.
  const mathMetrics = [];
  let mathChart = null;
  let mathLabels = '';
  /** The range the chart above shows (chosen or fitted), in seconds. */
  let shownRange = null;
  const mathList = h('ul', { id: 'math-metrics', class: 'muted small' });
  const addButton = h('button', {
    type: 'button', class: 'button', id: 'math-add',
    title: 'Add the series picked above, with its first statistic, as the next id (m1, m2, …)',
    onclick: () => { addMathMetric(); },
  }, 'Add this series');
  const expression = h('input', {
    id: 'math-expression', type: 'text', size: 40, placeholder: 'm1/m2*100',
    onchange: () => { chartMath(); },
  });
  const chartButton = h('button', {
    type: 'button', class: 'button button-primary', id: 'math-chart-button', onclick: () => { chartMath(); },
  }, 'Chart');
  const mathStatus = h('div', { id: 'math-status' });
  const mathChartEl = h('div', { id: 'math-chart' });

  main.replaceChildren(
    h('div', { class: 'page-head' }, h('h1', null, 'Metric explorer')),
    card('Series', { id: 'picker' },
      h('div', { class: 'form-row' }, nsField, metricField, dimsField, periodField),
      h('div', { class: 'form-row checks' }, h('span', { class: 'field-label' }, 'Statistics'), boxes,
        h('label', { class: 'check' }, 'other:', custom)), statsNote, listNote),
    card('Chart', { id: 'chart-card', extra: pickRange }, title, status, chartEl),
    card('Metric math', { id: 'math-card' },
      h('div', { class: 'form-row' }, addButton,
        h('label', { for: 'math-expression', class: 'field' }, h('span', null, 'Expression'), expression),
        chartButton),
      mathList, mathStatus, mathChartEl),
  );

  function addMathMetric() {
    if (!nsSel.value || !metricSel.value) return;
    const id = `m${mathMetrics.length + 1}`;
    const stat = statistics()[0] ?? 'Average';
    mathMetrics.push({ id, namespace: nsSel.value, metric: metricSel.value, dims: dimsSel.value, stat });
    mathList.append(h('li', { class: 'mono', dataset: { id } },
      `${id} = ${nsSel.value} · ${metricSel.value} {${dimsSel.value || 'no dimensions'}} · ${stat}`));
    if (!expression.value) expression.value = id;
  }

  /** The period picked (or "auto") over the range of the chart above (1 h before it has one). */
  function mathWindow() {
    const range = EXPLORE_RANGES.find(([k]) => k === query.get('range'))?.[1] ?? shownRange ?? 3600;
    const period = Number(periodSel.value) || autoPeriod(range, 'other');
    const end = new Date();
    return { period, start: new Date(end.getTime() - range * 1000), end };
  }

  async function chartMath() {
    const text = expression.value.trim();
    if (!text) return;
    if (!mathMetrics.length) {
      mathStatus.replaceChildren(notice('Add a series first: it gets the id m1 for the expression.'));
      return;
    }
    const { period, start, end } = mathWindow();
    const dims = (d) => d.split(',').filter(Boolean).map((pair) => {
      const at = pair.indexOf('=');
      return { Name: pair.slice(0, at), Value: pair.slice(at + 1) };
    });
    const body = {
      MetricDataQueries: [
        ...mathMetrics.map((m) => ({
          Id: m.id,
          MetricStat: { Metric: { Namespace: m.namespace, MetricName: m.metric, Dimensions: dims(m.dims) }, Period: period, Stat: m.stat },
          ReturnData: false,
        })),
        { Id: 'expression', Expression: text, Label: text },
      ],
      StartTime: start.toISOString(),
      EndTime: end.toISOString(),
      ScanBy: 'TimestampAscending',
    };
    const r = await api('/api/v1/metric-data', { method: 'POST', body });
    if (!r.ok) {
      const field = r.body?.error?.field;
      mathStatus.replaceChildren(notice(field ? `${field}: ${errorText(r)}` : errorText(r), 'error'));
      return;
    }
    mathStatus.replaceChildren();
    const results = r.body.MetricDataResults;
    const labels = results.map((x) => x.Label);
    if (mathLabels !== labels.join('\n') || !mathChart) {
      mathLabels = labels.join('\n');
      mathChart?.destroy();
      mathChart = timeChart(mathChartEl, {
        series: labels.map((label, i) => ({ label, color: PALETTE[i % PALETTE.length] })),
      });
    }
    mathChartEl.dataset.expression = text;
    mathChartEl.dataset.values = JSON.stringify(results.map((x) => x.Values));
    const lists = results.map((x) => x.Timestamps.map((t, i) => ({
      timestamp: new Date(t * 1000).toISOString(), value: x.Values[i],
    })));
    const { x, ys } = gapped(align(lists), period);
    mathChart.update({ x, ys, start: start.getTime() / 1000, end: end.getTime() / 1000 });
  }

  function kind() {
    return seriesKind(nsSel.value, metricSel.value);
  }

  /** The statistics to chart: those picked, without percentiles for a capacity gauge. */
  function statistics() {
    const picked = boxes.map((b) => b.firstChild).filter((i) => i.checked && !i.disabled).map((i) => i.value);
    const extra = custom.value.split(/[\s,]+/).filter(Boolean);
    const all = [...new Set([...picked, ...extra])];
    return kind() === 'gauge' ? all.filter((s) => !isPercentile(s)) : all;
  }

  /** Checks the statistics of the query string, or those that fit the series. */
  function showStats() {
    const gauge = kind() === 'gauge';
    const chosen = new Set((query.get('stats') ?? DEFAULT_STATISTICS[kind()].join(',')).split(',').filter(Boolean));
    for (const b of boxes) {
      const input = b.firstChild;
      input.checked = chosen.has(input.value);
      input.disabled = gauge && isPercentile(input.value);
      b.title = input.disabled ? 'Not for a capacity gauge: percentiles turn its steps into ramps' : '';
      b.classList.toggle('is-disabled', input.disabled);
    }
    custom.value = [...chosen].filter((s) => !STATISTICS.includes(s)).join(', ');
    statsNote.textContent = gauge
      ? 'A capacity gauge: drawn as steps, at 10 s periods where the range allows; percentiles are not offered (they turn steps into ramps).'
      : '';
  }

  function writeStats() {
    query.set({ stats: statistics().join(',') });
  }

  /** Fills the selects from the series list and the query string. */
  function pick(notify = true) {
    // Without a choice in the query string: a latency or CPU series (preferred()).
    const namespaces = [...new Set(series.map((s) => s.namespace))].sort();
    fill(nsSel, namespaces.map((n) => [n, n]), query.get('namespace') ?? preferred(series)?.namespace, 'No metrics yet');
    const inNs = series.filter((s) => s.namespace === nsSel.value);
    const metrics = [...new Set(inNs.map((s) => s.metric_name))].sort();
    fill(metricSel, metrics.map((m) => [m, m]), query.get('metric') ?? preferred(inNs)?.metric_name, '—');
    const sets = inNs.filter((s) => s.metric_name === metricSel.value).map((s) => s.dimensions);
    fill(dimsSel, sets.map((d) => [fmtDims(d), dimsKey(d)]).sort(([a], [b]) => a.localeCompare(b)), query.get('dims'), '—');
    query.set({ namespace: nsSel.value, metric: metricSel.value, dims: dimsSel.value });
    // Another series' statistics (not on every re-read of the list: the user may be typing).
    const shown = `${nsSel.value}\n${metricSel.value}`;
    if (shown !== statsShownFor) {
      statsShownFor = shown;
      showStats();
    }
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
    if (mathMetrics.length && expression.value.trim()) chartMath();
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
      status.replaceChildren(notice(kind() === 'gauge'
        ? 'Pick Maximum, Minimum or Average: percentiles are not offered for a capacity gauge.'
        : 'Pick at least one statistic.'));
      return;
    }
    // A range not chosen is fitted: the series is read over the last hour (or as much of it
    // as a chosen period allows) and shown over the shortest of 15m, 30m, 1h that holds it.
    const chosenRange = EXPLORE_RANGES.find(([k]) => k === query.get('range'))?.[1] ?? null;
    const userPeriod = Number(periodSel.value);
    const readRange = chosenRange ?? (userPeriod ? Math.max(900, Math.min(3600, userPeriod * 1440)) : 3600);
    const period = userPeriod || autoPeriod(readRange, kind());
    const end = new Date();
    let start = new Date(end.getTime() - readRange * 1000);
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
    let points = r.body.datapoints;
    if (chosenRange == null) {
      const oldest = Math.min(...points.map((p) => Date.parse(p.timestamp)));
      const range = fittedRange(points.length ? (end.getTime() - oldest) / 1000 : null);
      start = new Date(end.getTime() - range * 1000);
      points = points.filter((p) => Date.parse(p.timestamp) > start.getTime() - period * 1000);
      pickRange.show(EXPLORE_RANGES.find(([, v]) => v === range)?.[0] ?? null);
      shownRange = range;
    }
    pickRange.dataset.fitted = String(chosenRange == null);
    const gauge = kind() === 'gauge';
    title.replaceChildren(h('span', { class: 'mono' }, `${nsSel.value} · ${metricSel.value}`),
      ` {${dimsSel.value || 'no dimensions'}} · ${period} s periods${gauge ? ' · drawn as steps' : ''}`);
    if (chartStats !== `${stats.join(',')}/${gauge}`) {
      chartStats = `${stats.join(',')}/${gauge}`;
      chart?.destroy();
      chart = timeChart(chartEl, {
        series: stats.map((s, i) => ({ label: s, color: PALETTE[i % PALETTE.length], stepped: gauge })),
        integer: gauge,
      });
    }
    chartEl.dataset.statistics = stats.join(',');
    const lists = stats.map((s) => points
      .filter((p) => p[s] !== undefined)
      .map((p) => ({ timestamp: p.timestamp, value: p[s] })));
    const { x, ys } = gapped(align(lists), period);
    chart.update({ x, ys, start: start.getTime() / 1000, end: end.getTime() / 1000 });
  }

  return page;
}
