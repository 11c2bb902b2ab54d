// The live status page: what `slotctl status` shows, drawn from the coordinator's server-sent events. Read-only;
// every value is set as text (never as HTML), so nothing a machine, store or event carries can run here.
'use strict';

const HEALTH_ORDER = { down: 0, degraded: 1, unknown: 2, ok: 3 };
const MAX_STORE_ROWS = 300;
let model = null;

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k.startsWith('data-')) e.setAttribute(k, String(v));
    else e[k] = v;
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c === undefined || c === null ? '' : String(c)));
  return e;
}

function bytes(n) {
  n = Number(n || 0);
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

function age(ms) {
  ms = Number(ms || 0);
  if (!ms) return '';
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

function since(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

// a slot's state as its agent reports it (SERVING, STOPPED, FAILED, …), in the CLI's lower case
const SLOT_CLASS = { serving: 'ok', failed: 'down', fenced: 'down' };

function slotCell(slot) {
  if (!slot || !slot.name) return el('td', {}, '—');
  const state = String(slot.state || 'unknown').toLowerCase();
  return el('td', { 'data-machine': slot.machine, title: slot.name }, `${slot.machine} `, el('span', { class: `s-${SLOT_CLASS[state] || 'unknown'}` }, state));
}

function setCount(id, n, total) {
  document.getElementById(id).textContent = total !== undefined && total !== n ? `(${n} of ${total})` : `(${n})`;
}

function renderHeader(status) {
  const h = document.getElementById('health');
  h.textContent = status.healthy ? 'healthy' : `${status.problems.length} problem${status.problems.length === 1 ? '' : 's'}`;
  h.className = `badge ${status.healthy ? 'ok' : 'bad'}`;
  document.getElementById('where').textContent = `${status.backend || ''}${status.term ? ` · term ${status.term}` : ''} · updated ${new Date().toLocaleTimeString()}`;
}

function renderProblems(problems) {
  const ul = document.getElementById('problems');
  ul.replaceChildren(...(problems.length ? problems.map((p) => el('li', {}, p)) : [el('li', { class: 'none' }, 'none')]));
  setCount('problems-count', problems.length);
}

function renderOperations(ops) {
  const box = document.getElementById('operations');
  box.replaceChildren(
    ...(ops.length
      ? ops.map((op) =>
          el('div', { class: 'op', 'data-op': op.id },
            el('strong', {}, op.kind), ` ${op.store || op.machine || ''} · step `, el('strong', {}, op.step), ` · since ${since(op.createdAt)}`,
            op.waiting ? el('div', { class: 'waiting' }, `waits: ${op.waiting}`) : '',
            op.steps && op.steps.length ? el('ol', {}, ...op.steps.map((s) => el('li', {}, `${s.step}${s.reason ? ` — ${s.reason}` : ''}`))) : ''))
      : [el('p', { class: 'muted' }, 'none')]),
  );
  setCount('ops-count', ops.length);
}

function renderMachines(machines) {
  const rows = [...machines].sort((a, b) => (a.state === 'up') - (b.state === 'up') || a.name.localeCompare(b.name));
  document.querySelector('#machines tbody').replaceChildren(
    ...rows.map((m) =>
      el('tr', { 'data-machine': m.name },
        el('td', {}, m.name), el('td', { class: `s-${m.state}` }, m.state + (m.relayedVia ? ` (via ${m.relayedVia})` : '') + (m.drained ? ' (drained)' : '')), el('td', {}, m.connected ? 'connected' : 'not connected'),
        el('td', { class: 'num' }, m.slots), el('td', { class: 'num' }, m.masters), el('td', { class: 'num' }, m.fanOut), el('td', {}, since(m.stateSince)))),
  );
  setCount('machines-count', machines.length);
}

function renderStores() {
  if (!model) return;
  const filter = document.getElementById('filter').value.trim().toLowerCase();
  const all = model.status.stores;
  const shown = all
    .filter((s) => !filter || [s.name, s.health, s.master && s.master.machine, s.replica && s.replica.machine].some((v) => v && String(v).toLowerCase().includes(filter)))
    .sort((a, b) => (HEALTH_ORDER[a.health] ?? 2) - (HEALTH_ORDER[b.health] ?? 2) || a.name.localeCompare(b.name));
  // worst first, and no more rows than a page can redraw every second: the filter finds the others
  const drawn = shown.slice(0, MAX_STORE_ROWS);
  const frag = document.createDocumentFragment();
  for (const s of drawn) {
    const b = (s.master && s.master.backlog) || {};
    frag.append(
      el('tr', { 'data-store': s.name, 'data-master': s.master ? s.master.machine : '', title: (s.problems || []).join('\n') },
        el('td', {}, s.name), el('td', { class: `s-${s.health}` }, s.health), el('td', { class: 'num' }, s.epoch),
        slotCell(s.master), slotCell(s.replica),
        el('td', { class: 'num' }, b.files ? `${b.files} files, ${bytes(b.bytes)}${b.stalled ? ' (stalled)' : ''}` : '0'),
        el('td', { class: 'num' }, age(b.oldestChangeAgeMs))),
    );
  }
  document.querySelector('#stores tbody').replaceChildren(frag);
  setCount('stores-count', shown.length, all.length);
  document.getElementById('stores-more').textContent = shown.length > drawn.length ? `${shown.length - drawn.length} more stores, all ok or as above: type in the filter to find one` : '';
}

function renderEvents(events) {
  document.getElementById('events').replaceChildren(
    ...[...events].reverse().map((e) => el('li', {}, el('time', { dateTime: e.at }, since(e.at)), el('span', { class: 'kind' }, e.kind), [e.machine, e.store, e.slot].filter(Boolean).join(' '), e.reason ? ` — ${e.reason}` : '', e.actor ? ` (by ${e.actor})` : '')),
  );
}

/** Stores arrive as rows (a compact frame); the page works with objects. */
function storesOf(status) {
  const cols = status.storeColumns || [];
  return (status.stores || []).map((row) => {
    const o = {};
    cols.forEach((c, i) => (o[c] = row[i]));
    return {
      name: o.name, health: o.health, epoch: o.epoch, problems: o.problems || [],
      master: o.masterSlot ? { name: o.masterSlot, machine: o.masterMachine, state: o.masterState, backlog: { files: o.backlogFiles, bytes: o.backlogBytes, stalled: Boolean(o.stalled), oldestChangeAgeMs: o.oldestChangeAgeMs } } : null,
      replica: o.replicaSlot ? { name: o.replicaSlot, machine: o.replicaMachine, state: o.replicaState } : null,
    };
  });
}

function render(next) {
  next.status.stores = storesOf(next.status);
  model = next;
  const t0 = performance.now();
  document.getElementById('follower').hidden = true;
  renderHeader(next.status);
  renderProblems(next.status.problems);
  renderOperations(next.status.operations || []);
  renderMachines(next.status.machines);
  renderStores();
  renderEvents(next.events);
  document.body.dataset.rendered = String((Number(document.body.dataset.rendered) || 0) + 1);
  document.body.dataset.renderMs = String(Math.round(performance.now() - t0));
}

function follower(data) {
  // what this coordinator showed while it led is no longer the cluster: cleared, not left standing
  model = null;
  for (const id of ['problems', 'operations', 'events']) document.getElementById(id).replaceChildren();
  for (const id of ['#machines tbody', '#stores tbody']) document.querySelector(id).replaceChildren();
  document.getElementById('follower').hidden = false;
  document.getElementById('follower-text').textContent = data.leader
    ? `This coordinator follows. The leader coordinator is at ${data.leader}: open its status page.`
    : 'This coordinator follows and knows no leader now (an election, or etcd unreachable).';
  const h = document.getElementById('health');
  h.textContent = 'follower';
  h.className = 'badge';
}

function connect() {
  const live = document.getElementById('live');
  const source = new EventSource('/status/stream');
  source.addEventListener('open', () => { live.className = 'live on'; live.title = 'live'; });
  source.addEventListener('error', () => { live.className = 'live off'; live.title = 'disconnected: retrying'; });
  source.addEventListener('status', (e) => render(JSON.parse(e.data)));
  source.addEventListener('follower', (e) => follower(JSON.parse(e.data)));
}

let filterTimer;
document.getElementById('filter').addEventListener('input', () => {
  clearTimeout(filterTimer);
  filterTimer = setTimeout(renderStores, 150);
});
connect();
