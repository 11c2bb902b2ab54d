// Relayed heartbeats (Agent.Relay): a machine cut from the coordinator but not from its partners keeps its lease
// through one of them. Each welcomed agent instance gets a key; a relayed renewal counts only if every rule below
// holds, and the answer names the first that does not. The relay must not weaken fencing: a machine heard by nobody
// still loses its lease on time (nothing here extends a lease without a renewal its own agent signed), and one whose
// roles the coordinator has changed since — a change it cannot deliver without a session — is refused, so its agent
// fences and the change takes effect as it would for a machine gone silent.
import { heartbeatMac, macEqual, newRelayKey, RELAY_MAC_PATTERN, type RelayedHeartbeat } from '@slotctl/shared';
import type { MachineState } from '../db/rows.js';

/** What the coordinator knows when a relayed renewal arrives. */
export interface RelayContext {
  /** The agent that passes it on (the caller). */
  relayer: string;
  /** The relayer has a live session and is up. */
  relayerConnected: boolean;
  relayerState: MachineState | undefined;
  /** The relayed machine's state (undefined: not in the cluster) and whether it is retired. */
  machineState: MachineState | undefined;
  retired: boolean;
  /** Machines sharing a store with the relayed one. */
  partners: readonly string[];
  /** Digest of the roles the coordinator wants of the relayed machine now (computed only when needed). */
  desiredRolesDigest: () => string;
  /** Monotonic ms now, and the lease the coordinator grants. */
  now: number;
  leaseMs: number;
}

export interface RelayedRenewal extends RelayedHeartbeat {
  mac: string;
}

export type RelayVerdict = { ok: true; key: string } | { ok: false; problem: string };

interface Welcomed {
  instanceId: string;
  key: string;
  /** When the welcome left (monotonic ms). */
  at: number;
  /** The highest sequence number relayed so far: a renewal is counted once. */
  lastSeq: number;
}

const INSTANCE_ID = /^[0-9a-zA-Z-]{1,64}$/;

/**
 * How much later than it left a relayed renewal arrived: the time since the welcome on the coordinator's clock less
 * the time since it on the agent's (the welcome reached the agent after it left here, so this over-counts by the
 * welcome's trip and the agent's delay in reading it).
 */
export const lateBy = (coordinatorSinceWelcomeMs: number, agentSinceWelcomeMs: number): number => coordinatorSinceWelcomeMs - agentSinceWelcomeMs;

/**
 * The most a renewal may be late: two leases (a main thread held up for seconds reads the welcome late, and that
 * counts as lateness) plus 100 ppm of the session's age for the two monotonic clocks' rates. A partner holding signed
 * renewals back can postpone a dead machine's `down` by at most this much.
 */
export const lateLimit = (leaseMs: number, sessionAgeMs: number): number => 2 * leaseMs + sessionAgeMs * 1e-4;

export class RelayRegistry {
  private readonly welcomed = new Map<string, Welcomed>();

  /** A session of `instanceId` was welcomed: its new key (any earlier instance's key stops counting). */
  welcome(machine: string, instanceId: string, at: number): string {
    const key = newRelayKey();
    this.welcomed.set(machine, { instanceId, key, at, lastSeq: 0 });
    return key;
  }

  /** The machine left the cluster, or was declared down: nothing relayed for it counts until a new session. */
  forget(machine: string): void {
    this.welcomed.delete(machine);
  }

  check(r: RelayedRenewal, c: RelayContext): RelayVerdict {
    const refuse = (problem: string): RelayVerdict => ({ ok: false, problem });
    if (!INSTANCE_ID.test(r.instanceId)) return refuse('the instance id is not one an agent makes');
    if (!RELAY_MAC_PATTERN.test(r.mac)) return refuse('the renewal carries no valid MAC');
    if (!Number.isSafeInteger(r.seq) || r.seq < 1) return refuse(`sequence number ${r.seq} is not a positive integer`);
    if (r.machine === c.relayer) return refuse(`machine ${r.machine} cannot relay for itself (it has a session or renews directly)`);
    if (!c.relayerConnected || c.relayerState !== 'up') return refuse(`relayer ${c.relayer} is not connected and up (${c.relayerState ?? 'not in the cluster'})`);
    if (c.machineState === undefined) return refuse(`machine ${r.machine} is not in the cluster`);
    if (c.retired) return refuse(`machine ${r.machine} is retired`);
    if (c.machineState !== 'up' && c.machineState !== 'suspect') return refuse(`machine ${r.machine} is ${c.machineState}: it comes back through a session of its own`);
    const welcomed = this.welcomed.get(r.machine);
    if (!welcomed) return refuse(`no agent of machine ${r.machine} was welcomed by this coordinator (it restarted, or the machine was down since): the agent must reconnect itself`);
    if (welcomed.instanceId !== r.instanceId) return refuse(`agent instance ${r.instanceId} of machine ${r.machine} is not the one welcomed last`);
    if (!c.partners.includes(c.relayer)) return refuse(`${c.relayer} shares no store with ${r.machine}`);
    if (!macEqual(heartbeatMac(welcomed.key, r), r.mac)) return refuse('the MAC does not match (not signed by the welcomed agent, or altered on the way)');
    if (r.seq <= welcomed.lastSeq) return refuse(`sequence number ${r.seq} was relayed already (last ${welcomed.lastSeq})`);
    // counted before the rest: a replay of this renewal is refused whatever happens next
    welcomed.lastSeq = r.seq;
    if (r.fenced) return refuse(`the masters of ${r.machine} are fenced: it comes back through a session of its own`);
    const late = lateBy(c.now - welcomed.at, r.sinceWelcomeMs);
    if (late > lateLimit(c.leaseMs, c.now - welcomed.at)) return refuse(`the renewal arrived ${Math.round(late)} ms later than it left (held back on the way): not counted`);
    if (r.rolesDigest !== c.desiredRolesDigest()) return refuse(`machine ${r.machine} runs other roles than the coordinator wants (a change its agent cannot be sent without a session): no lease through a partner`);
    return { ok: true, key: welcomed.key };
  }
}
