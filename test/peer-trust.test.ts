// Bounded trust between agents, with a real coordinator and a real agent (m1) over mutual TLS. A certificate of the
// cluster CA is not enough to be served by m1's Peer service: the caller must be the agent of a machine sharing a
// store with m1, speaking for itself. m1's partner m2 is played by a tiny Peer server holding m2's certificate that
// promises the longest time the contract can carry (2^32-1 ms): m1 believes it only as long as its own lease.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CertificateFiles, channelCredentials, type ConfirmReply__Output, expectIdentity, loadContract, type PeerClient, peerIdentity, serverCredentials, tlsPaths } from '@slotctl/shared';
import { LocalCluster, waitFor } from '../tools/local-cluster.js';
import { ensureCertificates } from '../tools/test-pki.js';
import { readLogLines, removeDir, tempDir, twoMachineCluster } from './support/fixtures.js';
import { loopbackBlock } from './support/loopback-blocks.js';

const { net: NET, prefix: PREFIX } = loopbackBlock(import.meta.url);
const dir = tempDir('peer-trust');
const LEASE_MS = 5000;
const cluster = new LocalCluster({ dir, heartbeatInterval: '1s', lease: `${LEASE_MS / 1000}s` });
/** The agent's default --peer-port, which every agent of a cluster shares. */
const PEER_PORT = 7401;
const M1 = `127.${NET}.0.1:${PEER_PORT}`;
const M2 = `127.${NET}.0.2:${PEER_PORT}`;
const AGENT_START_MS = 45_000;

const certificates = new Map<string, CertificateFiles>();
const agentFiles = (m: string): CertificateFiles => {
  if (!certificates.has(m)) {
    ensureCertificates(cluster.pkiDir, [{ role: 'agent', name: m }]);
    certificates.set(m, new CertificateFiles(tlsPaths(cluster.pkiDir, { role: 'agent', name: m })));
  }
  return certificates.get(m)!;
};
const clients: PeerClient[] = [];
const peerOfM1 = (as: string): PeerClient => {
  const { Peer } = loadContract().slotctl.v1;
  const c = new Peer(M1, channelCredentials(agentFiles(as), expectIdentity('agent', 'm1')));
  clients.push(c);
  return c;
};
const call = <T>(fn: (cb: (err: grpc.ServiceError | null, reply?: T) => void) => void) =>
  new Promise<{ err: grpc.ServiceError | null; reply?: T }>((resolve) => fn((err, reply) => resolve({ err, reply })));
const m1Log = () => readLogLines(cluster.agents.get('m1')!.logFile);

/** The questions m1 asked of "m2", with the identity of the certificate it asked with. */
const askedOfM2: { caller: string | undefined; machine: string; promiseMs: number }[] = [];
/**
 * How "m2" answers: a partner cut from the coordinator too, promising the longest it can (the failsafe); or one that
 * says it reaches the coordinator, promises nothing, and answers every relayed renewal with an acknowledgement of its
 * own making (a minute's lease, not signed with m1's relay key).
 */
let m2Plays: 'promising' | 'forging' = 'promising';
const relayedToM2: { caller: string | undefined; machine: string; seq: number }[] = [];
let fakeM2: grpc.Server;

beforeAll(async () => {
  fakeM2 = new grpc.Server();
  fakeM2.addService(loadContract().slotctl.v1.Peer.service, {
    Confirm: (c: grpc.ServerUnaryCall<{ machine: string; promiseMs: number }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      askedOfM2.push({ caller: peerIdentity(c)?.name, machine: c.request.machine, promiseMs: c.request.promiseMs });
      if (m2Plays === 'promising') cb(null, { machine: 'm2', coordinatorReachable: false, promisedMs: 0xffffffff });
      else cb(null, { machine: 'm2', coordinatorReachable: true, promisedMs: 0 });
    },
    Relay: (c: grpc.ServerUnaryCall<{ machine: string; seq: number }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      relayedToM2.push({ caller: peerIdentity(c)?.name, machine: c.request.machine, seq: c.request.seq });
      cb(null, { seq: c.request.seq, leaseMs: 60_000, term: 0, mac: 'ab'.repeat(32) });
    },
  });
  await new Promise<void>((resolve, reject) => fakeM2.bindAsync(M2, serverCredentials(agentFiles('m2')), (e) => (e ? reject(e) : resolve())));
  await cluster.startCoordinator();
  const applied = await cluster.slotctl(['cluster', 'apply', '-'], twoMachineCluster(dir, NET, PREFIX));
  expect(applied.exitCode, applied.stderr).toBe(0);
  cluster.startAgent('m1');
  await waitFor('m1 to serve Peer', () => (m1Log().some((l) => l.msg === 'serving Peer (failsafe confirmations) to partner agents') ? true : undefined), AGENT_START_MS, 200);
}, 60_000);

afterAll(async () => {
  for (const c of clients) c.close();
  fakeM2?.forceShutdown();
  await cluster.stopAll();
  for (const f of certificates.values()) f.close();
  removeDir(dir);
});

describe('Peer service: bounded trust between agents', () => {
  it("refuses the certificate of a machine that shares no store with m1 (m9): PERMISSION_DENIED, and m1's log names the caller", async () => {
    const m9 = peerOfM1('m9');
    const confirm = await call((cb) => m9.Confirm({ machine: 'm9', promiseMs: LEASE_MS, holds: true }, { deadline: Date.now() + 10_000 }, cb));
    expect(confirm.err?.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(confirm.err?.details).toBe('Peer.Confirm refused by m1: agent m9 shares no store with m1');
    const guids = await call((cb) => m9.MailboxGuids({ slot: `${PREFIX}01-m1`, mailboxes: ['user.alice'] }, { deadline: Date.now() + 10_000 }, cb));
    expect(guids.err?.code).toBe(grpc.status.PERMISSION_DENIED);
    const warning = await waitFor('the refusal in m1\'s log', () => m1Log().find((l) => l.rpc === 'Confirm' && l.level === 40), 5000, 100);
    expect(warning).toMatchObject({ caller: { role: 'agent', name: 'm9' }, partners: ['m2'], msg: 'Peer.Confirm refused by m1: agent m9 shares no store with m1' });
  });

  it('serves its partner m2 as itself, and refuses m2 speaking for another machine', async () => {
    const m2 = peerOfM1('m2');
    const served = await call<ConfirmReply__Output>((cb) => m2.Confirm({ machine: 'm2', promiseMs: LEASE_MS, holds: true }, { deadline: Date.now() + 10_000 }, cb));
    expect(served.err).toBeNull();
    // m1 reaches its coordinator; one that has just started promotes nothing during its grace, so m1 may promise
    // then, but never for longer than the lease
    expect(served.reply).toMatchObject({ machine: 'm1', coordinatorReachable: true });
    expect(served.reply!.promisedMs).toBeLessThanOrEqual(LEASE_MS);
    const spoofed = await call((cb) => m2.Confirm({ machine: 'm3', promiseMs: LEASE_MS, holds: true }, { deadline: Date.now() + 10_000 }, cb));
    expect(spoofed.err?.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(spoofed.err?.details).toMatch(/agent m2 asks as machine "m3": a partner speaks only for itself/);
    // a pattern never reaches mbexamine
    const star = await call((cb) => m2.MailboxGuids({ slot: `${PREFIX}01-m1`, mailboxes: ['*'] }, { deadline: Date.now() + 10_000 }, cb));
    expect(star.err?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(star.err?.details).toMatch(/"\*" or "%"/);
  });

  it("believes m2's promise of 2^32-1 ms only as long as its own lease", async () => {
    const failsafe = await waitFor('m1 to hold its failsafe on m2\'s promise', () => m1Log().find((l) => typeof l.msg === 'string' && l.msg.startsWith('failsafe: every replica partner')), 15_000, 100);
    // m1 asked with its own certificate, for itself, for as long as its lease
    expect(askedOfM2[0]).toEqual({ caller: 'm1', machine: 'm1', promiseMs: LEASE_MS });
    expect(failsafe.remainingMs).toBeGreaterThan(0);
    expect(failsafe.remainingMs).toBeLessThanOrEqual(LEASE_MS);
    expect(m1Log().find((l) => l.msg === "partner promised longer than asked: believed only as long as this agent's lease")).toMatchObject({ partner: 'm2', promisedMs: 0xffffffff, askedMs: LEASE_MS });
  });

  it('does not believe an acknowledgement a partner made up: with the coordinator silent, m1 relays through m2 and still fences on time', async () => {
    m2Plays = 'forging';
    // m1 hears m2 say it reaches the coordinator (its next Confirm round), then the coordinator falls silent
    const asked = askedOfM2.length;
    await waitFor('m1 to ask m2 again', () => (askedOfM2.length > asked + 1 ? true : undefined), 10_000, 100);
    const coordinator = cluster.coordinator!.pid;
    process.kill(coordinator, 'SIGSTOP');
    const stoppedAt = Date.now();
    try {
      const expired = await waitFor('m1 to give up its lease', () => m1Log().find((l) => typeof l.msg === 'string' && l.msg.startsWith('lease expired') && Date.parse(l.time as string) >= stoppedAt), 3 * LEASE_MS, 100);
      // within its lease of the last acknowledgement, though m2 answered each relay with "a minute more"
      expect(Date.parse(expired.time as string) - stoppedAt).toBeLessThan(LEASE_MS + 1000);
      expect(relayedToM2.length).toBeGreaterThan(0);
      expect(relayedToM2.every((r) => r.caller === 'm1' && r.machine === 'm1')).toBe(true);
      expect(m1Log().some((l) => typeof l.msg === 'string' && l.msg.startsWith('relayed renewal through m2: the acknowledgement is not signed'))).toBe(true);
      expect(m1Log().some((l) => typeof l.msg === 'string' && l.msg.startsWith('lease renewed through partner'))).toBe(false);
    } finally {
      process.kill(coordinator, 'SIGCONT');
      m2Plays = 'promising';
    }
  }, 60_000);
});
