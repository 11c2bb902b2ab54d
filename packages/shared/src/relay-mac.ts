// Pure: the authentication of relayed heartbeats (Agent.Relay). A machine cut from the coordinator hands its renewal
// to a partner; the partner is trusted to pass it on, not to speak for the machine: the coordinator gives each agent
// instance a key in its welcome (over the session's mutual TLS), the agent signs its renewal with it and checks the
// acknowledgement's signature. A partner can drop or delay a relayed renewal — the lease counts from when the agent
// sent it, so that only shortens it — but cannot forge, replay (sequence numbers only rise) or alter one.
import { createHmac, randomBytes, timingSafeEqual, createHash } from 'node:crypto';

/** A new relay key: 32 random bytes, hex. */
export function newRelayKey(): string {
  return randomBytes(32).toString('hex');
}

export const RELAY_KEY_PATTERN = /^[0-9a-f]{64}$/;
export const RELAY_MAC_PATTERN = /^[0-9a-f]{64}$/;

function mac(key: string, parts: readonly (string | number)[]): string {
  // fields joined by a byte no name or number holds: no two different renewals sign the same text
  return createHmac('sha256', Buffer.from(key, 'hex')).update(parts.join('\n')).digest('hex');
}

export interface RelayedHeartbeat {
  machine: string;
  instanceId: string;
  seq: number;
  rolesDigest: string;
  fenced: boolean;
  sinceWelcomeMs: number;
}

export function heartbeatMac(key: string, h: RelayedHeartbeat): string {
  return mac(key, ['heartbeat', h.machine, h.instanceId, h.seq, h.rolesDigest, h.fenced ? 1 : 0, h.sinceWelcomeMs]);
}

export interface RelayedAck {
  machine: string;
  instanceId: string;
  seq: number;
  leaseMs: number;
  term: number;
}

export function ackMac(key: string, a: RelayedAck): string {
  return mac(key, ['ack', a.machine, a.instanceId, a.seq, a.leaseMs, a.term]);
}

/** Constant-time comparison of two hex MACs (false for anything not one). */
export function macEqual(a: string, b: string): boolean {
  if (!RELAY_MAC_PATTERN.test(a) || !RELAY_MAC_PATTERN.test(b)) return false;
  return timingSafeEqual(Buffer.from(a, 'hex'), Buffer.from(b, 'hex'));
}

/** One slot's role as both ends know it: the agent from what it applied, the coordinator from what it wants. */
export interface SlotRole {
  slot: string;
  role: string;
  epoch: number;
}

/** Digest of a machine's roles (order does not matter): equal digests mean the same slots, roles and epochs. */
export function rolesDigest(slots: readonly SlotRole[]): string {
  const lines = slots.map((s) => `${s.slot} ${s.role} ${s.epoch}`).sort();
  return createHash('sha256').update(lines.join('\n')).digest('hex');
}
