// The Peer service of one PeerLink over real gRPC on loopback, with certificates of a throw-away cluster CA: who is
// served (partners, as themselves), what is refused before any work (non-partners, too many or pattern names), how
// many requests run Cyrus tools at once, and how long a partner's promise is believed. Insecure mode is served, but
// made-up names grow nothing.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CertificateFiles, channelCredentials, type ConfirmReply__Output, createLogger, expectIdentity, type GuidsReply__Output, loadContract, type PeerClient, peerIdentity, serverCredentials, tlsPaths } from '@slotctl/shared';
import { initPki, issueToDirectory } from '@slotctl/shared/pki';
import { monotonicMs } from '../lease/lease.js';
import type { MailboxGuidList } from '../cyrus/mailboxes.js';
import { PeerLink, type PeerLinkOptions } from './link.js';
import { MAX_NAMES_PER_REQUEST, PEER_WORK_CONCURRENCY, PEER_WORK_QUEUE } from './trust.js';
import type { RelayCandidate } from '../lease/relay.js';
import { freePort } from '../../../../tools/ports.js';

const pki = mkdtempSync(join(tmpdir(), 'slotctl-peer-link-'));
const files = (name: string) => new CertificateFiles(tlsPaths(pki, { role: 'agent', name }));
const LEASE_MS = 5000;
const MARGIN_MS = 1000;

let port = 0;
const lines: Record<string, unknown>[] = [];
const log = createLogger('test', { level: 'info', destination: { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) } });
const clients: { close(): void }[] = [];
const links: PeerLink[] = [];
let fakeM2: grpc.Server;
const askedOfM2: { caller: string | undefined; machine: string; promiseMs: number }[] = [];

/** Guids requests that have started and not yet been let go (the Cyrus tool "running"). */
let running = 0;
let mostRunning = 0;
let release: () => void = () => undefined;
let held: Promise<void> = Promise.resolve();
/** Renewals m1 was asked to pass on to the coordinator, and what holds them there. */
const relayed: { machine: string; seq: number; mac: string }[] = [];
let relayHeld: Promise<void> = Promise.resolve();
let relayers: RelayCandidate[] = [];

function link(overrides: Partial<PeerLinkOptions>): PeerLink {
  const l = new PeerLink({
    machine: 'm1',
    port,
    intervalMs: 100,
    promiseMs: () => LEASE_MS,
    marginMs: MARGIN_MS,
    coordinatorReachable: () => true,
    coordinatorGraceUntil: () => undefined,
    holds: () => true,
    replicaPartners: () => ['m2'],
    slotPartner: (slot) => ({ 'pl01-m1': 'm2', 'pl02-m1': 'm3' })[slot],
    guids: async (_slot, names): Promise<MailboxGuidList[]> => {
      running++;
      mostRunning = Math.max(mostRunning, running);
      await held;
      running--;
      return names.map((name) => ({ name, exists: false, uniqueid: '', guids: [], expungedGuids: [], deleted: [] }));
    },
    syncUsers: async () => undefined,
    partnerReachesCoordinator: () => undefined,
    onFailsafe: () => undefined,
    relay: async (renew) => {
      relayed.push({ machine: renew.machine, seq: renew.seq, mac: renew.mac });
      await relayHeld;
      return { seq: renew.seq, leaseMs: 4321, term: 7, mac: 'ab'.repeat(32) };
    },
    onRelayers: (c) => (relayers = c),
    log,
    ...overrides,
  });
  links.push(l);
  return l;
}

function client(address: string, as: string | undefined): PeerClient {
  const { Peer } = loadContract().slotctl.v1;
  const c = new Peer(`${address}:${port}`, as ? channelCredentials(files(as), expectIdentity('agent', 'm1')) : grpc.credentials.createInsecure());
  clients.push(c);
  return c;
}

const call = <T>(fn: (cb: (err: grpc.ServiceError | null, reply?: T) => void) => void): Promise<{ err: grpc.ServiceError | null; reply?: T }> =>
  new Promise((resolve) => fn((err, reply) => resolve({ err, reply })));
const confirm = (c: PeerClient, machine: string) => call<ConfirmReply__Output>((cb) => c.Confirm({ machine, promiseMs: LEASE_MS, holds: true }, { deadline: Date.now() + 5000 }, cb));
const guids = (c: PeerClient, mailboxes: string[]) => call<GuidsReply__Output>((cb) => c.MailboxGuids({ slot: 'pl01-m1', mailboxes }, { deadline: Date.now() + 5000 }, cb));

let m1: PeerLink;
let failsafe: number | undefined;

beforeAll(async () => {
  await initPki(pki);
  for (const m of ['m1', 'm2', 'm9']) await issueToDirectory(pki, { role: 'agent', name: m });
  port = await freePort('127.0.0.2');
  // m1's partner m2 answers every question with the longest promise the contract can carry
  fakeM2 = new grpc.Server();
  fakeM2.addService(loadContract().slotctl.v1.Peer.service, {
    Confirm: (c: grpc.ServerUnaryCall<{ machine: string; promiseMs: number }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      askedOfM2.push({ caller: peerIdentity(c)?.name, machine: c.request.machine, promiseMs: c.request.promiseMs });
      cb(null, { machine: 'm2', coordinatorReachable: false, promisedMs: 0xffffffff });
    },
  });
  await new Promise<void>((resolve, reject) => fakeM2.bindAsync(`127.0.0.2:${port}`, serverCredentials(files('m2')), (e) => (e ? reject(e) : resolve())));
  m1 = link({ certificates: files('m1'), onFailsafe: (d) => (failsafe = d) });
  m1.setPartners([{ machine: 'm2', address: '127.0.0.2' }]);
  await m1.listen('127.0.0.1');
});

afterAll(() => {
  release();
  for (const c of clients) c.close();
  for (const l of links) l.stop();
  fakeM2?.forceShutdown();
  rmSync(pki, { recursive: true, force: true });
});

describe('Peer service with mutual TLS', () => {
  it('refuses every call from an agent that shares no store, PERMISSION_DENIED naming it, and logs who called', async () => {
    const m9 = client('127.0.0.1', 'm9');
    const refused = await confirm(m9, 'm9');
    expect(refused.err?.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(refused.err?.details).toBe('Peer.Confirm refused by m1: agent m9 shares no store with m1');
    expect((await guids(m9, ['user.alice'])).err?.code).toBe(grpc.status.PERMISSION_DENIED);
    expect((await call((cb) => m9.SyncUsers({ slot: 'pl01-m1', users: ['alice'] }, cb))).err?.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(running).toBe(0);
    expect(lines.find((l) => l.rpc === 'Confirm' && l.level === 40)).toMatchObject({ caller: { role: 'agent', name: 'm9' }, partners: ['m2'] });
  });

  it("serves a partner as itself, and refuses it speaking for another machine", async () => {
    const m2 = client('127.0.0.1', 'm2');
    const served = await confirm(m2, 'm2');
    expect(served.err).toBeNull();
    expect(served.reply).toMatchObject({ machine: 'm1', coordinatorReachable: true, promisedMs: 0 });
    const spoofed = await confirm(m2, 'm3');
    expect(spoofed.err?.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(spoofed.err?.details).toMatch(/agent m2 asks as machine "m3": a partner speaks only for itself/);
    // a partner in one store asks about the slot of another store (shared with m3): refused before any tool runs
    const other = await call<GuidsReply__Output>((cb) => m2.MailboxGuids({ slot: 'pl02-m1', mailboxes: ['user.alice'] }, { deadline: Date.now() + 5000 }, cb));
    expect(other.err?.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(other.err?.details).toBe('Peer.MailboxGuids refused by m1: slot pl02-m1 shares its store with m3, not with m2');
    expect(running).toBe(0);
  });

  it("passes a partner's own renewal on to the coordinator and returns the answer unchanged; refuses others'", async () => {
    const renew = (c: PeerClient, machine: string, seq: number) => call<{ seq: number; leaseMs: number; term: number; mac: string }>((cb) => c.Relay({ machine, instanceId: 'i-1', seq, rolesDigest: 'r', mac: 'cd'.repeat(32) }, { deadline: Date.now() + 5000 }, cb));
    const m2 = client('127.0.0.1', 'm2');
    const ok = await renew(m2, 'm2', 11);
    expect(ok.err).toBeNull();
    expect(ok.reply).toMatchObject({ seq: 11, leaseMs: 4321, term: 7, mac: 'ab'.repeat(32) });
    expect(relayed).toEqual([{ machine: 'm2', seq: 11, mac: 'cd'.repeat(32) }]);
    const spoofed = await renew(m2, 'm3', 12);
    expect(spoofed.err?.code).toBe(grpc.status.PERMISSION_DENIED);
    expect((await renew(client('127.0.0.1', 'm9'), 'm9', 13)).err?.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(relayed).toHaveLength(1);
    // a partner gone wrong cannot pile renewals up on the coordinator through this agent
    let let_go: () => void = () => undefined;
    relayHeld = new Promise<void>((r) => (let_go = r));
    const waiting = Array.from({ length: 4 }, (_, i) => renew(m2, 'm2', 20 + i));
    for (let waited = 0; relayed.length < 5; waited += 20) {
      if (waited > 20_000) throw new Error(`only ${relayed.length} relays reached the coordinator side`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const fifth = await renew(m2, 'm2', 30);
    expect(fifth.err?.code).toBe(grpc.status.UNAVAILABLE);
    let_go();
    relayHeld = Promise.resolve();
    expect((await Promise.all(waiting)).every((r) => r.err === null)).toBe(true);
  });

  it('refuses a request with too many names or a pattern before any Cyrus tool runs', async () => {
    const m2 = client('127.0.0.1', 'm2');
    const big = await guids(m2, Array.from({ length: MAX_NAMES_PER_REQUEST + 1 }, (_, i) => `user.u${i}`));
    expect(big.err?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(big.err?.details).toMatch(`at most ${MAX_NAMES_PER_REQUEST} are served`);
    const star = await guids(m2, ['*']);
    expect(star.err?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(running).toBe(0);
    expect((await guids(m2, ['user.alice'])).reply?.mailboxes).toEqual([{ name: 'user.alice', exists: false, uniqueid: '', guids: [], expungedGuids: [], deleted: [] }]);
  });

  it(`runs at most ${PEER_WORK_CONCURRENCY} requests at once, queues ${PEER_WORK_QUEUE}, and turns the rest away`, async () => {
    held = new Promise<void>((r) => (release = r));
    mostRunning = 0;
    const m2 = client('127.0.0.1', 'm2');
    const total = PEER_WORK_CONCURRENCY + PEER_WORK_QUEUE + 5;
    const settled: { err: grpc.ServiceError | null }[] = [];
    const all = Array.from({ length: total }, () => guids(m2, ['user.alice']).then((r) => (settled.push(r), r)));
    // the ones beyond the queue are answered at once, while the others still wait (polled: no fixed sleep)
    for (let waited = 0; !(running === PEER_WORK_CONCURRENCY && settled.length === 5); waited += 20) {
      if (waited > 20_000) throw new Error(`gate never filled: ${running} running, ${settled.length} answered`);
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(settled.every((r) => r.err?.code === grpc.status.UNAVAILABLE)).toBe(true);
    release();
    const results = await Promise.all(all);
    expect(results.filter((r) => !r.err)).toHaveLength(PEER_WORK_CONCURRENCY + PEER_WORK_QUEUE);
    expect(results.filter((r) => r.err?.code === grpc.status.UNAVAILABLE)).toHaveLength(5);
    expect(mostRunning).toBe(PEER_WORK_CONCURRENCY);
  });

  it("believes a partner's 2^32-1 ms promise only as long as its own lease", async () => {
    m1.start();
    const until = await new Promise<number>((resolve) => {
      const t = setInterval(() => failsafe !== undefined && (clearInterval(t), resolve(failsafe)), 20);
    });
    expect(askedOfM2.at(-1)).toEqual({ caller: 'm1', machine: 'm1', promiseMs: LEASE_MS });
    expect(until - monotonicMs()).toBeLessThanOrEqual(LEASE_MS - MARGIN_MS);
    expect(lines.find((l) => l.msg === "partner promised longer than asked: believed only as long as this agent's lease")).toMatchObject({ partner: 'm2', promisedMs: 0xffffffff, askedMs: LEASE_MS });
    // m2 said it does not reach the coordinator: still a partner to relay through, not a preferred one
    expect(relayers).toEqual([{ machine: 'm2', address: `127.0.0.2:${port}`, reaches: false }]);
  });
});

describe('Peer service --insecure', () => {
  it('serves without identities, but a made-up asker gets no promise and is not remembered', async () => {
    const grace = monotonicMs() + 60_000; // the coordinator "just started": partners get promises
    const insecure = link({ machine: 'm1', coordinatorGraceUntil: () => grace });
    insecure.setPartners([{ machine: 'm2', address: '127.0.0.4' }]);
    await insecure.listen('127.0.0.3');
    const c = client('127.0.0.3', undefined);
    expect((await confirm(c, 'm2')).reply).toMatchObject({ machine: 'm1', promisedMs: LEASE_MS });
    for (let i = 0; i < 200; i++) expect((await confirm(c, `x${i}`)).reply?.promisedMs).toBe(0);
    expect(insecure.promises.size).toBe(1);
    expect((insecure as unknown as { heard: Map<string, number> }).heard.size).toBe(1);
    expect(insecure.views().map((v) => v.machine)).toEqual(['m2']);
  });
});
