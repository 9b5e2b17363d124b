// Cluster page (`/cluster`): in cluster mode (docs/cluster.md), the nodes and the partitions
// each owns, the leader, this node's connection, configuration check and how far it has
// applied each partition it owns; in single-node mode, a line saying so.
// Data: GET /api/v1/cluster.

import { card, errorText, fmtDuration, getJSON, h, notice, table, fillRows } from './common.js';

function tile(label, value, kind, id) {
  return h('div', { class: `tile tile-${kind}`, id }, h('div', { class: 'tile-value' }, value), h('div', { class: 'tile-label' }, label));
}

function ranges(list) {
  // 0,1,2,5,7,8 → "0–2, 5, 7–8": partitions as a node owns them, short.
  const out = [];
  for (const p of [...list].sort((a, b) => a - b)) {
    const last = out.at(-1);
    if (last && last[1] === p - 1) last[1] = p;
    else out.push([p, p]);
  }
  return out.map(([a, b]) => (a === b ? `${a}` : `${a}–${b}`)).join(', ') || '—';
}

export function mount(main) {
  document.title = 'Cluster · Thermostat';
  const error = h('div');
  const tiles = h('div', { class: 'tiles', id: 'cluster-summary' });
  const nodesTable = table(['Node', 'HTTP', 'Partitions', 'Owned', 'Last heartbeat'], [], { id: 'cluster-nodes', empty: 'No live node.' });
  const replayTable = table(['Partition', 'Applied up to', 'Stream at take-over', 'Loaded'], [], { id: 'cluster-replay', empty: 'This node owns no partition.' });
  const body = h('div');
  main.replaceChildren(h('div', { class: 'page-head' }, h('h1', null, 'Cluster')), error, body);

  async function refresh() {
    const r = await getJSON('/api/v1/cluster');
    if (!r.ok) {
      error.replaceChildren(notice(errorText(r), 'error'));
      return;
    }
    error.replaceChildren();
    const c = r.body;
    if (c.mode !== 'cluster') {
      body.replaceChildren(notice('This server runs alone (single-node mode). Start nodes with --cluster and --node-id to form a cluster (docs/cluster.md).'));
      return;
    }
    const now = Date.now();
    const ev = c.alarm_evaluation ?? {};
    tiles.replaceChildren(
      tile('nodes', String(c.nodes.length), 'neutral', 'cluster-node-count'),
      tile('partitions', String(c.partitions), 'neutral'),
      tile('leader', c.leader ?? 'none', c.leader ? 'ok' : 'warn', 'cluster-leader'),
      tile(`this node (${c.node_id})`, c.ready ? 'ready' : (c.connected ? 'loading' : 'NATS unreachable'), c.ready ? 'ok' : 'warn', 'cluster-self'),
      // Every node evaluates the metric alarms of its partitions; the leader also composites,
      // metric math and the alarms that scale.
      tile('alarms evaluated here', ev.evaluating ? (ev.leads ? 'own + leader' : 'own partitions') : 'paused', ev.evaluating ? 'ok' : 'warn', 'cluster-alarms'),
    );
    const pausedNote = ev.evaluating || !ev.paused ? null : notice(`Alarm evaluation is paused on this node: ${ev.paused}.`);
    const configCheck = c.config_matches
      ? null
      : notice(`This node's configuration (${c.config_digest ?? 'none'}) differs from the leader's (${c.cluster_config_digest}): it is not ready until it runs the cluster's files.`, 'error');
    fillRows(nodesTable.tBodies[0], 5, c.nodes.map((n) => ({
      attrs: { dataset: { node: n.node_id } },
      cells: [
        h('span', { class: 'strong' }, n.node_id, n.node_id === c.leader ? [' ', h('span', { class: 'badge' }, 'leader')] : null),
        h('span', { class: 'muted' }, n.http_addr || '—'),
        String(n.partitions.length),
        h('span', { class: 'small' }, ranges(n.partitions)),
        `${fmtDuration(Math.max(0, now - n.heartbeat_ms))} ago`,
      ],
    })), 'No live node.');
    fillRows(replayTable.tBodies[0], 4, c.replay.map((p) => ({
      attrs: { dataset: { partition: String(p.partition), loaded: String(p.loaded) } },
      cells: [String(p.partition), String(p.applied_seq), String(p.target_seq), p.loaded ? 'yes' : 'replaying'],
    })), 'This node owns no partition.');
    body.replaceChildren(
      tiles,
      ...(configCheck ? [configCheck] : []),
      ...(pausedNote ? [pausedNote] : []),
      card('Nodes', { id: 'cluster-nodes-card' }, nodesTable),
      card(`Partitions of ${c.node_id}`, { id: 'cluster-replay-card' }, replayTable),
    );
  }

  return { refresh };
}
