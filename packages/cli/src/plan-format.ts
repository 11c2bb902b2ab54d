// Text output of the planner's answers (slotctl plan …, machine add/retire). The golden tests compare exactly this.
import type { AddMachinePlan, EvacuatePlan, FanOutPlan, LayoutPlan, MachineSummary, RebalancePlan, ReplicaMove, WhatIfPlan } from '@slotctl/planner';
import { table } from './format.js';

function disks(slot: { dataDisk: string; metaDisk: string }): string {
  return slot.dataDisk || slot.metaDisk ? `${slot.dataDisk}/${slot.metaDisk}` : '-';
}

export function machinesPlanTable(machines: readonly MachineSummary[]): string {
  return table(
    ['machine', 'rack', 'slots', 'masters', 'replicas', 'fan-out', 'replica peers of its masters'],
    machines.map((m) => [m.machine + (m.down ? ' (down)' : m.drained ? ' (drained)' : ''), m.rack || '-', m.slots, m.masters, m.replicas, m.fanOut, m.peers.join(' ') || '-']),
  );
}

function notesText(notes: readonly string[]): string[] {
  return notes.length ? ['', 'notes:', ...notes.map((n) => `  - ${n}`)] : [];
}

export function layoutText(plan: LayoutPlan, options: { reasons?: boolean } = {}): string {
  const lines = [
    `${plan.stores.length} new store(s); replicas of each machine's masters spread over ${plan.fanOutTarget} peer(s) where possible`,
    '',
    table(
      ['store', 'master', 'disks', 'replica', 'disks', ...(options.reasons === false ? [] : ['why'])],
      plan.stores.map((s) => [s.store, s.master.machine, disks(s.master), s.replica.machine, disks(s.replica), ...(options.reasons === false ? [] : [s.reason])]),
    ),
    '',
    'machines after the layout:',
    machinesPlanTable(plan.machines),
    ...notesText(plan.notes),
  ];
  return lines.join('\n');
}

export function whatIfText(plan: WhatIfPlan): string {
  const lines = [
    plan.sentence,
    '',
    table(
      ['machine', 'masters now', 'after', 'increase', 'takes over from'],
      plan.machines.map((m) => [m.machine, m.mastersBefore, m.mastersAfter, m.increase ? `+${m.increase}` : '0', Object.entries(m.takesFrom).map(([from, n]) => `${from}: ${n}`).join(', ') || '-']),
    ),
  ];
  if (plan.withoutReplica.length) lines.push('', `without a replica (${plan.withoutReplica.length}): ${plan.withoutReplica.join(' ')}`);
  if (plan.lostStores.length) lines.push('', `LOST until a machine returns (${plan.lostStores.length}): ${plan.lostStores.join(' ')}`);
  return lines.join('\n');
}

export function rebalanceText(plan: RebalancePlan): string {
  const lines = [plan.sentence];
  if (plan.moves.length) {
    lines.push('', table(['store', 'master from', 'to (its replica)', 'why'], plan.moves.map((m) => [m.store, m.from, m.to, m.reason])));
  }
  const machines = Object.keys(plan.before);
  lines.push(
    '',
    table(
      ['machine', 'masters now', 'after', 'share'],
      machines.map((m) => [m, plan.before[m]!, plan.after[m]!, plan.share[m]!.min === plan.share[m]!.max ? plan.share[m]!.min : `${plan.share[m]!.min}–${plan.share[m]!.max}`]),
    ),
    ...notesText(plan.notes),
  );
  return lines.join('\n');
}

export function replicaMovesTable(moves: readonly ReplicaMove[]): string {
  return table(['store', 'replica from', 'to', 'why'], moves.map((m) => [m.store, m.from, m.to, m.reason]));
}

export function fanOutText(plan: FanOutPlan): string {
  const after = new Map(plan.after.map((m) => [m.machine, m]));
  const lines = [
    plan.sentence,
    '',
    table(['machine', 'masters', 'fan-out', 'target', 'after', 'peers'], plan.before.filter((m) => !m.down).map((m) => [m.machine, String(m.masters), String(m.fanOut), String(m.target), String(after.get(m.machine)!.fanOut), m.peers.join(' ') || '-'])),
  ];
  if (plan.moves.length) {
    lines.push('', 'replica moves (each: slotctl store move-replica STORE --to MACHINE --ip ADDRESS):', replicaMovesTable(plan.moves));
  }
  for (const s of plan.short) lines.push(`note: ${s.machine} stays at fan-out ${s.fanOut} of ${s.target}: ${s.why}`);
  return lines.join('\n');
}

export function evacuateText(plan: EvacuatePlan): string {
  const lines = [plan.sentence];
  if (plan.switchovers.length) lines.push('', 'first, its masters switched over:', table(['store', 'master from', 'to', 'why'], plan.switchovers.map((m) => [m.store, m.from, m.to, m.reason])));
  if (plan.replicaMoves.length) lines.push('', 'then its replicas moved (a new replica slot seeded from the master each; the old slot stops after the switch, its files stay):', replicaMovesTable(plan.replicaMoves));
  if (plan.unplaced.length) lines.push('', 'cannot leave it now:', table(['store', 'why'], plan.unplaced.map((u) => [u.store, u.reason])));
  lines.push('', 'machines afterwards:', machinesPlanTable(plan.machines));
  return lines.join('\n');
}

export function addMachineText(plan: AddMachinePlan): string {
  const lines = [plan.sentence];
  if (plan.newStores.length) {
    lines.push('', 'new stores:', table(['store', 'master', 'disks', 'replica', 'disks'], plan.newStores.map((s) => [s.store, s.master.machine, disks(s.master), s.replica.machine, disks(s.replica)])));
  }
  if (plan.replicaMoves.length) lines.push('', 'replicas moved to it (new replica slot seeded from the master):', replicaMovesTable(plan.replicaMoves));
  if (plan.switchovers.length) lines.push('', 'then switchovers:', table(['store', 'master from', 'to'], plan.switchovers.map((m) => [m.store, m.from, m.to])));
  lines.push('', 'machines afterwards:', machinesPlanTable(plan.machines), ...notesText(plan.notes));
  return lines.join('\n');
}
