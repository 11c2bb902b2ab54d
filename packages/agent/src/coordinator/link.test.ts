// The link following the leader and refusing deposed ones: in-process Agent services on loopback, in the clear,
// with the slots and the lease thread stubbed (only what the link tells them is looked at).
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Socket } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger, rolesDigest, loadContract, notLeaderStatus, serverCredentials, type AgentHandlers, type AgentMessage__Output, type CoordinatorMessage } from '@slotctl/shared';
import type { MachineSlots } from '../machine/slots.js';
import { AppliedStore } from '../state/applied-store.js';
import { CoordinatorLink } from './link.js';

type Mode = { follower: string | undefined } | { term: number; desiredTerm?: number; ackTerm?: number; ackVersion?: string; ackDelayMs?: number; noAck?: boolean };

interface Fake {
  address: string;
  sessions: number;
  mode: Mode;
  /** What reached it, in order: `heartbeat SEQ`, `ack SEQ` (when sent) and `end` (the agent ended the stream). */
  seen: string[];
  server: grpc.Server;
}

async function fakeCoordinator(mode: Mode): Promise<Fake> {
  const server = new grpc.Server();
  const fake: Fake = { address: '', sessions: 0, mode, server, seen: [] };
  const handlers: Partial<AgentHandlers> = {
    Session: (call) => {
      fake.sessions++;
      call.on('error', () => undefined);
      const m = fake.mode;
      if ('follower' in m) {
        call.emit('error', Object.assign(new Error('not the leader'), notLeaderStatus(fake.address, m.follower)));
        return;
      }
      call.on('data', (message: AgentMessage__Output) => {
        const send = (body: CoordinatorMessage) => call.write(body);
        if (message.hello) {
          send({ welcome: { heartbeatIntervalMs: 1000, leaseMs: 5000, coordinatorId: fake.address, term: m.term } });
          send({ desired: { version: `v-${fake.address}`, machine: 'm1', slots: [], term: m.desiredTerm ?? m.term } });
        }
        if (message.heartbeat) {
          const seq = message.heartbeat.seq;
          fake.seen.push(`heartbeat ${seq}${message.heartbeat.restarting ? ' restarting' : ''}`);
          if (m.noAck) return;
          setTimeout(() => {
            fake.seen.push(`ack ${seq}`);
            send({ ack: { seq, leaseMs: 5000, term: m.ackTerm ?? m.term, desiredVersion: m.ackVersion ?? `v-${fake.address}` } });
          }, m.ackDelayMs ?? 0);
        }
      });
      call.on('end', () => {
        fake.seen.push('end');
        call.end();
      });
    },
  };
  server.addService(loadContract().slotctl.v1.Agent.service, handlers as AgentHandlers);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', serverCredentials(undefined), (err, p) => (err ? reject(err) : resolve(p))));
  fake.address = `127.0.0.1:${port}`;
  return fake;
}

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setUp(coordinators: Fake[], persistedTerm = 0, fence: { fenced?: () => boolean; confirmed?: (version: string, matches: boolean) => void } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'slotctl-link-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const applied = new AppliedStore(dir, 'm1');
  await applied.load();
  if (persistedTerm) await applied.saveTerm(persistedTerm);
  const lines: string[] = [];
  const log = createLogger('slot-agent', { level: 'info', destination: { write: (s: string) => void lines.push(s) } });
  const lease = { sessions: [] as { coordinator: string; term: number }[], acked: 0, roles: [] as string[] };
  const appliedVersions: string[] = [];
  const link = new CoordinatorLink({
    machine: 'm1',
    coordinators: coordinators.map((c) => c.address),
    applied,
    slots: { reports: async () => [], apply: async () => undefined } as unknown as MachineSlots,
    log,
    lease: {
      session: (coordinator, _id, _interval, _lease, term) => void lease.sessions.push({ coordinator, term }),
      sessionEnded: () => undefined,
      sent: () => undefined,
      acked: () => void lease.acked++,
      term: () => undefined,
      coordinatorLeaseHeld: () => true,
      roles: (digest) => void lease.roles.push(digest),
    },
    onDesired: (d) => void appliedVersions.push(d.version),
    withhold: () => [],
    peerViews: () => [],
    fenced: fence.fenced ?? (() => false),
    confirmed: fence.confirmed,
  });
  cleanups.push(async () => void (await link.stop()));
  for (const c of coordinators) cleanups.push(() => c.server.forceShutdown());
  link.start();
  return { link, applied, lease, lines, appliedVersions };
}

async function until(what: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!what()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('CoordinatorLink with several coordinators', () => {
  it('goes at once to the leader a follower names; renewals go there; the term is persisted', async () => {
    const leader = await fakeCoordinator({ term: 5 });
    const follower = await fakeCoordinator({ follower: leader.address });
    const { link, applied, lease } = await setUp([follower, leader]);
    const started = Date.now();
    await until(() => link.state.phase === 'connected');
    expect(Date.now() - started).toBeLessThan(1000); // no backoff for a hint
    expect(link.state).toMatchObject({ coordinator: leader.address, term: 5 });
    expect(lease.sessions).toEqual([{ coordinator: leader.address, term: 5 }]);
    await until(() => lease.acked > 0);
    // on disk, for the next agent
    await until(() => existsSync(applied.path) && /"term": 5/.test(readFileSync(applied.path, 'utf8')));
  });

  it('refuses a deposed leader (older welcome term than the one persisted) and takes the next address', async () => {
    const deposed = await fakeCoordinator({ term: 4 });
    const leader = await fakeCoordinator({ term: 9 });
    const { link, lines, appliedVersions } = await setUp([deposed, leader], 9);
    await until(() => link.state.phase === 'connected');
    expect(link.state).toMatchObject({ coordinator: leader.address, term: 9 });
    expect(deposed.sessions).toBe(1);
    expect(appliedVersions).toEqual([`v-${leader.address}`]);
    expect(lines.join('')).toContain('welcome of leadership term 4 refused: term 9 is newer');
  });

  it('refuses a desired state, and an acknowledgement, of an older term than its welcome', async () => {
    const staleDesired = await fakeCoordinator({ term: 7, desiredTerm: 6 });
    const staleAck = await fakeCoordinator({ term: 7, ackTerm: 6 });
    const leader = await fakeCoordinator({ term: 7 });
    const { link, lines, appliedVersions, lease } = await setUp([staleDesired, staleAck, leader]);
    await until(() => link.state.phase === 'connected' && link.state.coordinator === leader.address, 10_000);
    expect(appliedVersions).not.toContain(`v-${staleDesired.address}`);
    expect(lines.join('')).toContain('desired state of leadership term 6 refused: term 7 is newer');
    expect(lines.join('')).toContain('heartbeat acknowledgement of leadership term 6 refused: term 7 is newer');
    await until(() => lease.acked > 0);
    // the first two were welcomed before their stale message came
    expect(lease.sessions.map((s) => s.coordinator)).toEqual([staleDesired.address, staleAck.address, leader.address]);
  });

  it('waits only a moment while no leader is elected, then takes the one elected', async () => {
    const b = await fakeCoordinator({ follower: undefined });
    const a = await fakeCoordinator({ follower: undefined });
    const { link } = await setUp([a, b]);
    await until(() => a.sessions + b.sessions >= 3);
    // the election ends: b leads
    b.mode = { term: 3 };
    a.mode = { follower: b.address };
    const elected = Date.now();
    await until(() => link.state.phase === 'connected');
    expect(Date.now() - elected).toBeLessThan(1000);
    expect(link.state).toMatchObject({ coordinator: b.address });
  });

  it('leaves an address that takes the connection but never answers for the next', async () => {
    // a host that is gone looks like this to the link, only slower (SYNs unanswered): no answer, ever
    const sockets: Socket[] = [];
    const silent = createServer((socket) => void sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => {
      for (const s of sockets) s.destroy();
      silent.close();
    });
    const port = (silent.address() as { port: number }).port;
    const leader = await fakeCoordinator({ term: 2 });
    const black = { address: `127.0.0.1:${port}`, sessions: 0, mode: { follower: undefined }, server: new grpc.Server(), seen: [] } satisfies Fake;
    const { link, lines } = await setUp([black, leader]);
    await until(() => link.state.phase === 'connected', 8000);
    expect(link.state).toMatchObject({ coordinator: leader.address });
    expect(lines.join('')).toContain('no connection within 1500 ms');
  });
});

describe('CoordinatorLink confirming the desired state to a fenced agent', () => {
  it('passes on the version an acknowledgement of a fenced heartbeat names, and whether it is the one applied', async () => {
    const coordinator = await fakeCoordinator({ term: 0 });
    let fenced = false;
    const confirmations: { version: string; matches: boolean }[] = [];
    const { link, lease } = await setUp([coordinator], 0, { fenced: () => fenced, confirmed: (version, matches) => void confirmations.push({ version, matches }) });
    await until(() => link.state.phase === 'connected' && lease.acked > 1, 10_000);
    // not fenced: acknowledgements confirm nothing
    expect(confirmations).toEqual([]);
    fenced = true;
    await until(() => confirmations.length > 0, 5000);
    expect(confirmations[0]).toEqual({ version: `v-${coordinator.address}`, matches: true });
    // a failover meanwhile: the coordinator names a version this agent has not applied
    (coordinator.mode as { ackVersion?: string }).ackVersion = 'v-after-failover';
    await until(() => confirmations.some((c) => c.version === 'v-after-failover'), 5000);
    expect(confirmations.find((c) => c.version === 'v-after-failover')!.matches).toBe(false);
  });

  it('starts a fresh session on resync, whose desired state is applied again', async () => {
    const coordinator = await fakeCoordinator({ term: 0 });
    const { link, appliedVersions, lease } = await setUp([coordinator]);
    await until(() => link.state.phase === 'connected' && appliedVersions.length === 1 && link.appliedVersion === `v-${coordinator.address}`, 10_000);
    // the lease thread knows the roles applied (relayed renewals carry them): at the start, and after each apply
    expect(lease.roles.length).toBeGreaterThanOrEqual(2);
    expect(lease.roles.at(-1)).toBe(rolesDigest([]));
    link.resync('a test');
    await until(() => coordinator.sessions === 2 && appliedVersions.length === 2 && link.state.phase === 'connected', 10_000);
  });
});

describe('CoordinatorLink stopping with a last renewal (an agent restart leaving its slots serving)', () => {
  it('sends one more heartbeat, saying restarting, and ends the stream only once it is acknowledged', async () => {
    const coordinator = await fakeCoordinator({ term: 0, ackDelayMs: 300 });
    const { link, lease } = await setUp([coordinator]);
    await until(() => link.state.phase === 'connected' && lease.acked > 0, 10_000);
    const acked = lease.acked;
    const t = performance.now();
    expect(await link.stop(2000)).toBe(true);
    // the acknowledgement came ~300 ms after the heartbeat: waited for, not the whole 2 s
    expect(performance.now() - t).toBeGreaterThanOrEqual(250);
    expect(performance.now() - t).toBeLessThan(1900);
    expect(lease.acked).toBeGreaterThan(acked);
    await until(() => coordinator.seen.includes('end'));
    // the last heartbeat, and only it, asks for the restart hold
    const heartbeats = coordinator.seen.filter((e) => e.startsWith('heartbeat'));
    expect(heartbeats.filter((e) => e.endsWith('restarting'))).toEqual([heartbeats.at(-1)]);
    const seq = heartbeats.at(-1)!.split(' ')[1];
    expect(coordinator.seen.indexOf(`ack ${seq}`), coordinator.seen.join(', ')).toBeGreaterThan(-1);
    expect(coordinator.seen.indexOf(`ack ${seq}`)).toBeLessThan(coordinator.seen.indexOf('end'));
  });

  /** A link in session with a coordinator that, from now on, acknowledges nothing. */
  async function connectedThenSilent() {
    const coordinator = await fakeCoordinator({ term: 0 });
    const { link, lease } = await setUp([coordinator]);
    await until(() => link.state.phase === 'connected' && lease.acked > 0, 10_000);
    (coordinator.mode as { noAck?: boolean }).noAck = true;
    return { coordinator, link };
  }

  it('waits no longer than it was told for an acknowledgement that does not come', async () => {
    const { link } = await connectedThenSilent();
    const t = performance.now();
    expect(await link.stop(400)).toBe(false);
    expect(performance.now() - t).toBeGreaterThanOrEqual(350);
    expect(performance.now() - t).toBeLessThan(3000);
    expect(link.state.phase).toBe('stopped');
  });

  it('gives up the wait when the stream breaks, and does not connect again while stopping', async () => {
    const { coordinator, link } = await connectedThenSilent();
    const t = performance.now();
    const stopping = link.stop(5000);
    await new Promise((r) => setTimeout(r, 200));
    coordinator.server.forceShutdown();
    expect(await stopping).toBe(false);
    expect(performance.now() - t).toBeLessThan(4000);
    expect(link.state.phase).toBe('stopped');
    expect(coordinator.sessions).toBe(1);
  });
});
