// Time-series charts on uPlot (the vendored `window.uPlot`), plus a small plugin that draws
// shaded spans (ALARM periods), a shaded band between two bounds (an anomaly-detection
// band), horizontal lines (thresholds), highlighted points (breaching datapoints) and vertical
// markers (scaling activities); and the state timeline strip.

import { fmtNum, fmtTime, h, stateClass } from './common.js';

export const COLORS = {
  alarm: '#cf222e',
  alarmShade: 'rgba(207, 34, 46, 0.10)',
  band: 'rgba(9, 105, 218, 0.16)',
  bandEdge: 'rgba(9, 105, 218, 0.45)',
  ok: '#1a7f37',
  insufficient: '#8c959f',
  accent: '#0969da',
  warn: '#bf8700',
  grid: '#eaeef2',
  axis: '#57606a',
};

/** Series colours of the explorer, in order. */
export const PALETTE = ['#0969da', '#1a7f37', '#8250df', '#bf8700', '#cf222e', '#1b7c83', '#bc4c00', '#57606a'];

const FONT = '-apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, sans-serif';

/** Runs `draw(ctx)` clipped to the plotting area. */
function clipped(u, draw) {
  const { ctx, bbox } = u;
  ctx.save();
  ctx.beginPath();
  ctx.rect(bbox.left, bbox.top, bbox.width, bbox.height);
  ctx.clip();
  draw(ctx, bbox, uPlot.pxRatio);
  ctx.restore();
}

/** Text on a white backing, anchored at its baseline's `align` end. */
function label(ctx, text, x, y, color, px, align) {
  const w = ctx.measureText(text).width;
  const left = align === 'right' ? x - w : x;
  ctx.fillStyle = 'rgba(255, 255, 255, 0.85)';
  ctx.fillRect(left - 3 * px, y - 11 * px, w + 6 * px, 14 * px);
  ctx.fillStyle = color;
  ctx.fillText(text, left, y);
}

function pad(n) {
  return String(n).padStart(2, '0');
}

/** 24-hour tick labels; the date under the first tick and wherever the day changes. */
function timeTicks(u, splits, axisIdx, space, incr) {
  return splits.map((s, i) => {
    const d = new Date(s * 1000);
    const day = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
    if (incr >= 86400) return day;
    const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
    const t = incr < 60 ? `${hm}:${pad(d.getSeconds())}` : hm;
    const prev = i > 0 ? new Date(splits[i - 1] * 1000) : null;
    return !prev || prev.getDate() !== d.getDate() ? `${t}\n${day}` : t;
  });
}

/** Indices of values with no value on either side (no line reaches them), or null. */
function isolated(ys) {
  const idxs = [];
  for (let i = 0; i < ys.length; i += 1) {
    if (ys[i] != null && ys[i - 1] == null && ys[i + 1] == null) idxs.push(i);
  }
  return idxs.length ? idxs : null;
}

/** The last non-null value of series `si` (the legend shows it when the cursor is away). */
function latest(u, si) {
  const ys = u.data[si] ?? [];
  for (let i = ys.length - 1; i >= 0; i -= 1) if (ys[i] != null) return ys[i];
  return null;
}

/** Rows at the top of the plot that activity labels may take, and their height (CSS px). */
const LABEL_ROWS = 3;
const LABEL_ROW_PX = 18;
/** Markers closer than this (CSS px) share one label; a label keeps this far from its line. */
const MERGE_PX = 8;
const LABEL_GAP_PX = 4;

/** The label of markers that share one: `2→3`, `2→3→4`, or `2→…→6 (4 activities)`. */
function clusterText(ms) {
  if (ms.length === 1) return ms[0].label ?? '';
  const chained = ms.every((m, i) => m.from != null && m.to != null && (i === 0 || m.from === ms[i - 1].to));
  if (chained) {
    const chain = [ms[0].from, ...ms.map((m) => m.to)];
    return ms.length <= 3 ? chain.join('→') : `${chain[0]}→…→${chain.at(-1)} (${ms.length} activities)`;
  }
  return ms.length <= 2 ? ms.map((m) => m.label).join(', ') : `${ms.length} activities`;
}

/**
 * Labels of the vertical markers, as elements over the plot (so that each shows its markers'
 * details on hover): markers closer than MERGE_PX share a label; labels are placed right of
 * their line (left of it at the right edge) in the first of LABEL_ROWS rows where they
 * overlap no other; a label that fits in no row is merged into the one before it, and the
 * labels are placed again. Each marker's line gets a hover area with its details too.
 */
function markerLabels(extras, layer) {
  const place = (u) => {
    const width = u.over.clientWidth;
    const points = extras().markers
      .map((m) => ({ m, x: u.valToPos(m.x, 'x') }))
      .filter((p) => Number.isFinite(p.x) && p.x >= 0 && p.x <= width)
      .sort((a, b) => a.x - b.x);
    const hits = points.map(({ m, x }) => {
      const hit = h('div', { class: 'marker-hit', title: m.detail ?? m.label ?? '' });
      hit.style.left = `${x - 4}px`;
      return hit;
    });
    const clusters = [];
    for (const { m, x } of points) {
      const last = clusters.at(-1);
      if (last && x - last.x1 < MERGE_PX) {
        last.items.push(m);
        last.x1 = x;
      } else {
        clusters.push({ x0: x, x1: x, items: [m] });
      }
    }
    for (;;) {
      const labels = clusters.map((c) => {
        const el = h('div', {
          class: 'marker-label',
          title: c.items.map((m) => m.detail ?? m.label ?? '').join('\n'),
          dataset: { markers: String(c.items.length) },
        }, clusterText(c.items));
        // A label with a failed activity among its markers takes the failure's colour.
        el.style.color = c.items.some((m) => m.color === COLORS.alarm) ? COLORS.alarm : c.items[0].color;
        return el;
      });
      layer.replaceChildren(...hits, ...labels);
      const widths = labels.map((el) => el.offsetWidth);
      const rows = Array.from({ length: LABEL_ROWS }, () => []);
      const misfit = clusters.findIndex((c, i) => {
        const w = widths[i];
        let left = c.x1 + LABEL_GAP_PX;
        if (left + w > width) left = c.x0 - LABEL_GAP_PX - w;
        left = Math.max(0, Math.min(left, width - w));
        const row = rows.findIndex((boxes) => boxes.every(([a, b]) => left + w + 2 <= a || b + 2 <= left));
        if (row < 0) return true;
        rows[row].push([left, left + w]);
        labels[i].style.left = `${left}px`;
        labels[i].style.top = `${2 + row * LABEL_ROW_PX}px`;
        return false;
      });
      if (misfit <= 0) return;
      const [gone] = clusters.splice(misfit, 1);
      const before = clusters[misfit - 1];
      before.items.push(...gone.items);
      before.x1 = gone.x1;
    }
  };
  return { hooks: { draw: [place] } };
}

/**
 * The runs of consecutive indices where a band has both bounds: [[first, last], …].
 */
function bandRuns(band) {
  const runs = [];
  let start = null;
  for (let i = 0; i <= band.x.length; i += 1) {
    const has = i < band.x.length && band.lower[i] != null && band.upper[i] != null;
    if (has && start == null) start = i;
    if (!has && start != null) {
      runs.push([start, i - 1]);
      start = null;
    }
  }
  return runs;
}

/** Fills the band between `lower` and `upper` (beneath the series), with thin edges. */
function drawBand(u, ctx, band, px) {
  const X = (i) => u.valToPos(band.x[i], 'x', true);
  const Y = (v) => u.valToPos(v, 'y', true);
  // A run of one period is drawn a period wide (centred on its time).
  const half = band.x.length > 1 ? Math.abs(X(1) - X(0)) / 2 : 2 * px;
  for (const [a, b] of bandRuns(band)) {
    const xs = [];
    for (let i = a; i <= b; i += 1) xs.push(X(i));
    if (a === b) {
      xs[0] -= half;
      xs.push(X(a) + half);
    }
    const at = (k) => a + Math.min(k, b - a);
    ctx.beginPath();
    xs.forEach((x, k) => (k === 0 ? ctx.moveTo(x, Y(band.upper[at(k)])) : ctx.lineTo(x, Y(band.upper[at(k)]))));
    for (let k = xs.length - 1; k >= 0; k -= 1) ctx.lineTo(xs[k], Y(band.lower[at(k)]));
    ctx.closePath();
    ctx.fillStyle = band.color ?? COLORS.band;
    ctx.fill();
    ctx.lineWidth = Math.max(1, Math.round(px));
    ctx.strokeStyle = band.edge ?? COLORS.bandEdge;
    for (const bound of [band.upper, band.lower]) {
      ctx.beginPath();
      xs.forEach((x, k) => (k === 0 ? ctx.moveTo(x, Y(bound[at(k)])) : ctx.lineTo(x, Y(bound[at(k)]))));
      ctx.stroke();
    }
  }
}

function overlay(extras) {
  return {
    hooks: {
      drawClear: [(u) => clipped(u, (ctx, bbox, px) => {
        for (const s of extras().spans) {
          const x0 = u.valToPos(s.from, 'x', true);
          const x1 = u.valToPos(s.to, 'x', true);
          ctx.fillStyle = s.color;
          ctx.fillRect(x0, bbox.top, Math.max(1, x1 - x0), bbox.height);
        }
        const { band } = extras();
        if (band) drawBand(u, ctx, band, px);
      })],
      draw: [(u) => clipped(u, (ctx, bbox, px) => {
        const { hlines, markers, marks } = extras();
        ctx.font = `${11 * px}px ${FONT}`;
        for (const l of hlines) {
          // Whole pixels and an even width: crisp lines.
          const y = Math.round(u.valToPos(l.y, 'y', true));
          ctx.strokeStyle = l.color;
          ctx.lineWidth = Math.max(2, Math.round(2 * px));
          ctx.setLineDash((l.dash ?? [6, 4]).map((d) => d * px));
          ctx.beginPath();
          ctx.moveTo(bbox.left, y);
          ctx.lineTo(bbox.left + bbox.width, y);
          ctx.stroke();
          ctx.setLineDash([]);
          label(ctx, `${l.label} ${fmtNum(l.y)}`, bbox.left + bbox.width - 6 * px, y - 5 * px, l.color, px, 'right');
        }
        for (const m of markers) {
          const x = Math.round(u.valToPos(m.x, 'x', true));
          ctx.strokeStyle = m.color;
          ctx.lineWidth = Math.max(2, Math.round(2 * px));
          ctx.setLineDash([4 * px, 2 * px]);
          ctx.beginPath();
          ctx.moveTo(x, bbox.top);
          ctx.lineTo(x, bbox.top + bbox.height);
          ctx.stroke();
          ctx.setLineDash([]);
        }
        // Dots shrink when the datapoints are dense, so that the line stays visible.
        const spacing = bbox.width / px / Math.max(1, u.data[0].length);
        const radius = Math.max(1.75, Math.min(4.5, spacing * 0.35)) * px;
        for (const p of marks) {
          ctx.beginPath();
          ctx.arc(u.valToPos(p.x, 'x', true), u.valToPos(p.y, 'y', true), radius, 0, 2 * Math.PI);
          ctx.fillStyle = p.color;
          ctx.fill();
          if (radius > 3 * px) {
            ctx.lineWidth = 1.5 * px;
            ctx.strokeStyle = '#fff';
            ctx.stroke();
          }
        }
      })],
    },
  };
}

/**
 * A time chart in `el`. `spec`: {series: [{label, color, dash, stepped, width}], height,
 * zero (include 0 on the y axis), integer (whole-number ticks), emptyText}.
 * Returns {update(data)} with data = {x: seconds[], ys: [values[] per series], start, end
 * (the x range, seconds), hlines: [{y, color, label}], spans: [{from, to, color}],
 * marks: [{x, y, color}], markers: [{x, color, label}], band: {x: seconds[], lower: [],
 * upper: [] (null where there is no band), color, edge} or null}.
 */
export function timeChart(el, spec) {
  let extras = { x: [], ys: [], hlines: [], spans: [], marks: [], markers: [] };
  const plot = h('div', { class: 'chart-plot' });
  const empty = h('div', { class: 'chart-empty' }, h('span', null, spec.emptyText ?? 'No datapoints in this range.'));
  // The markers' labels, over the plot (markerLabels).
  const layer = h('div', { class: 'marker-layer' });
  el.classList.add('chart');
  el.replaceChildren(plot, empty);

  const yRange = (u, min, max) => {
    const bounds = extras.band ? [...extras.band.lower, ...extras.band.upper] : [];
    const vals = [min, max, ...extras.hlines.map((l) => l.y), ...bounds].filter((v) => Number.isFinite(v));
    if (spec.zero) vals.push(0);
    if (!vals.length) return [0, 1];
    let lo = Math.min(...vals);
    let hi = Math.max(...vals);
    if (lo === hi) {
      const d = Math.abs(lo) * 0.1 || 1;
      lo -= d;
      hi += d;
    }
    const pad = (hi - lo) * 0.08;
    // Room at the top for the markers' labels (markerLabels), so that they cover no line.
    const top = extras.markers.length ? (hi - lo) * 0.3 : pad;
    return [spec.zero && lo >= 0 ? 0 : lo - pad, spec.integer ? Math.ceil(hi + top) : hi + top];
  };
  const axis = { stroke: COLORS.axis, grid: { stroke: COLORS.grid, width: 1 }, ticks: { stroke: COLORS.grid, width: 1 } };
  const opts = {
    width: Math.max(320, el.clientWidth || 800),
    height: spec.height ?? 280,
    scales: {
      x: { time: true, range: (u, min, max) => [extras.start ?? min, extras.end ?? max] },
      y: { range: yRange },
    },
    axes: [
      { ...axis, values: timeTicks },
      {
        ...axis,
        size: 64,
        incrs: spec.integer ? [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000] : undefined,
        values: (u, vals) => vals.map(fmtNum),
      },
    ],
    series: [
      { label: 'Time', value: (u, v, si, idx) => (idx == null ? 'latest' : fmtTime(v * 1000)) },
      ...spec.series.map((s) => ({
        label: s.label,
        stroke: s.color,
        width: s.width ?? 2,
        dash: s.dash,
        paths: s.stepped ? uPlot.paths.stepped({ align: 1 }) : undefined,
        // uPlot hides points where they are dense; a value between gaps is drawn anyway.
        points: { size: 5, filter: (u, si, show) => (show ? null : isolated(u.data[si])) },
        value: (u, v, si, idx) => fmtNum(idx == null ? latest(u, si) : v),
      })),
    ],
    cursor: { drag: { x: false, y: false } },
    legend: { live: true },
    plugins: [overlay(() => extras), markerLabels(() => extras, layer)],
    hooks: {
      // What the chart shows, for tests and tools: the x range drawn and the data's extent.
      draw: [(u) => {
        const xs = u.data[0] ?? [];
        const has = (i) => u.data.slice(1).some((ys) => ys[i] != null);
        let first = 0;
        while (first < xs.length && !has(first)) first += 1;
        let last = xs.length - 1;
        while (last >= 0 && !has(last)) last -= 1;
        Object.assign(el.dataset, {
          xMin: String(u.scales.x.min),
          xMax: String(u.scales.x.max),
          dataMin: first < xs.length ? String(xs[first]) : '',
          dataMax: last >= 0 ? String(xs[last]) : '',
        });
      }],
    },
  };
  const u = new uPlot(opts, [[], ...spec.series.map(() => [])], plot);
  u.over.append(layer);
  const resize = new ResizeObserver(() => {
    const w = el.clientWidth;
    if (w && Math.abs(w - u.width) > 1) u.setSize({ width: w, height: u.height });
  });
  resize.observe(el);

  return {
    update(data) {
      extras = { hlines: [], spans: [], marks: [], markers: [], band: null, ...data };
      u.setData([data.x, ...data.ys]);
      const n = data.ys.reduce((acc, ys) => acc + ys.filter((v) => v != null).length, 0);
      el.dataset.points = String(n);
      el.classList.toggle('is-empty', n === 0);
    },
    destroy() {
      resize.disconnect();
      u.destroy();
    },
  };
}

/**
 * Joins series given as [{timestamp, value}] lists on their timestamps:
 * {x: seconds[], ys: [values-or-null[] per list]}.
 */
export function align(lists) {
  const xs = [...new Set(lists.flatMap((l) => l.map((p) => Date.parse(p.timestamp) / 1000)))].sort((a, b) => a - b);
  const index = new Map(xs.map((x, i) => [x, i]));
  const ys = lists.map((l) => {
    const y = new Array(xs.length).fill(null);
    for (const p of l) y[index.get(Date.parse(p.timestamp) / 1000)] = p.value;
    return y;
  });
  return { x: xs, ys };
}

/**
 * Breaks lines at missing data: inserts a null one period after any step longer than one and
 * a half periods (uPlot draws no line across nulls).
 */
export function gapped({ x, ys }, period) {
  const out = { x: [], ys: ys.map(() => []) };
  for (let i = 0; i < x.length; i += 1) {
    if (i > 0 && x[i] - x[i - 1] > period * 1.5) {
      out.x.push(x[i - 1] + period);
      out.ys.forEach((y) => y.push(null));
    }
    out.x.push(x[i]);
    ys.forEach((y, k) => out.ys[k].push(y[i]));
  }
  return out;
}

/** Fills `el` with the state timeline: one coloured stretch per segment over [start, end]. */
export function timelineStrip(el, segments, start, end) {
  const t0 = Date.parse(start);
  const total = Math.max(1, Date.parse(end) - t0);
  el.classList.add('timeline');
  el.replaceChildren(...segments.map((s) => {
    const from = Date.parse(s.start);
    const to = Date.parse(s.end);
    const seg = h('div', {
      class: `seg state-bg-${stateClass(s.state)}`,
      dataset: { state: s.state },
      title: `${s.state.replace('_', ' ')}: ${fmtTime(s.start)} – ${fmtTime(s.end)}`,
    });
    seg.style.left = `${((from - t0) / total) * 100}%`;
    seg.style.width = `${Math.max(0.2, ((to - from) / total) * 100)}%`;
    return seg;
  }));
}
