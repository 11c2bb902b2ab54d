// Agent sessions and liveness with real processes, real gRPC and the real SQLite file: connect → up; kill -9 →
// suspect then down within a lease and a fifth; a coordinator restart keeps every row and the agents come back by
// themselves; the desired state re-sent on reconnect changes nothing; a stale epoch is refused.
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CertificateFiles, channelCredentials, expectIdentity, loadContract, tlsPaths } from '@slotctl/shared';
import { initPki, issueToDirectory } from '@slotctl/shared/pki';
import { LocalCluster, waitFor } from '../tools/local-cluster.js';
import { pidAlive } from '../packages/agent/src/slot/process.js';
import { dumpDatabase, logTail, readLogLines, removeDir, tempDir, twoMachineCluster } from './support/fixtures.js';
import { loopbackBlock } from './support/loopback-blocks.js';

const { net: NET, prefix: PREFIX } = loopbackBlock(import.meta.url);
const dir = tempDir('sessions');
// its own PKI: a test here re-issues m1's certificate, which agents of other test files must not see change
const cluster = new LocalCluster({ dir, heartbeatInterval: '1s', lease: '5s', ownPki: true });
const appliedFile = (m: string) => join(dir, 'agents', m, 'applied.json');
/** Starting an agent process took 13-16 s before it connected on a busy host (2 cores, other tests, busy loops). */
const AGENT_START_MS = 45_000;
const applyLines = (m: string) =>
  readLogLines(cluster.agents.get(m)!.logFile).filter((l) => l.msg === 'desired state applied') as { changed: number; unchanged: number; refused: number; version: string }[];

beforeAll(async () => {
  await cluster.startCoordinator();
  expect((await cluster.slotctl(['cluster', 'apply', '-'], twoMachineCluster(dir, NET, PREFIX))).exitCode).toBe(0);
});

afterAll(async () => {
  await cluster.stopAll();
  removeDir(dir);
});

describe('agent sessions and liveness', () => {
  it('shows an agent that connects as up and connected, with events', async () => {
    cluster.startAgent('m1');
    cluster.startAgent('m2');
    await cluster.waitForMachines('up', ['m1', 'm2'], AGENT_START_MS);
    const machines = (await cluster.client().listMachines()).machines;
    expect(machines.map((m) => [m.name, m.state, m.connected, m.agentVersion])).toEqual([
      ['m1', 'up', true, '0.1.0'],
      ['m2', 'up', true, '0.1.0'],
    ]);
    const kinds = (await cluster.client().listEvents({ machine: 'm1', limit: 50 })).events.map((e) => e.kind);
    expect(kinds).toEqual(expect.arrayContaining(['agent.connected', 'machine.up']));
    // heartbeats are persisted
    await waitFor('persisted heartbeats', async () => {
      const machines = (await cluster.client().listMachines()).machines;
      return machines.length === 2 && machines.every((m) => m.lastHeartbeat) ? true : undefined;
    });
  });

  it("refuses a relayed renewal a partner cannot vouch for: as another relayer, or not signed with m1's relay key", async () => {
    const { Agent } = loadContract().slotctl.v1;
    const m2 = new CertificateFiles(tlsPaths(cluster.pkiDir, { role: 'agent', name: 'm2' }));
    const client = new Agent(cluster.target, channelCredentials(m2, expectIdentity('coordinator')));
    const relay = (relayer: string) =>
      new Promise<grpc.ServiceError | null>((resolve) =>
        client.Relay({ relayer, renew: { machine: 'm1', instanceId: 'made-up', seq: 1, rolesDigest: '', mac: '00'.repeat(32) } }, { deadline: Date.now() + 5000 }, (err: grpc.ServiceError | null) => resolve(err)),
      );
    try {
      // m2's certificate relaying as m1's partner m3: refused before anything is looked at
      const spoofed = await relay('m3');
      expect(spoofed?.code).toBe(grpc.status.PERMISSION_DENIED);
      expect(spoofed?.details).toMatch(/relay as machine m3 refused: this certificate is for agent m2/);
      // as itself, for an instance and key it does not know: no lease for m1 through it
      const forged = await relay('m2');
      expect(forged?.code).toBe(grpc.status.FAILED_PRECONDITION);
      expect(forged?.details).toMatch(/^relayed heartbeat of m1 refused: /);
    } finally {
      client.close();
      m2.close();
    }
    // m1's own session and lease are untouched
    expect((await cluster.client().listMachines()).machines.find((m) => m.name === 'm1')).toMatchObject({ state: 'up', connected: true, relayedVia: '' });
  });

  it('refuses a hello or a renewal as m1 with m2\'s certificate, none, or one of another CA; m1 keeps its session and lease, and an event names the attempt', async () => {
    const { Agent } = loadContract().slotctl.v1;
    const m2 = new CertificateFiles(tlsPaths(cluster.pkiDir, { role: 'agent', name: 'm2' }));
    const client = new Agent(cluster.target, channelCredentials(m2, expectIdentity('coordinator')));
    try {
      // a hello as m1 over m2's certificate: the stream is ended with PERMISSION_DENIED
      const refused = await new Promise<grpc.ServiceError>((resolve) => {
        const stream = client.Session();
        stream.on('data', () => undefined);
        stream.on('error', resolve);
        stream.write({ hello: { machine: 'm1', instanceId: 'impostor', agentVersion: '0.1.0', slots: [] } });
      });
      expect(refused.code).toBe(grpc.status.PERMISSION_DENIED);
      expect(refused.details).toMatch(/hello as machine m1 refused: this certificate is for agent m2/);
      // a renewal as m1 likewise
      const renewal = await new Promise<grpc.ServiceError | null>((resolve) => client.Renew({ machine: 'm1', instanceId: 'impostor', seq: 1 }, (err: grpc.ServiceError | null) => resolve(err)));
      expect(renewal?.code).toBe(grpc.status.PERMISSION_DENIED);
    } finally {
      client.close();
      m2.close();
    }
    // without a client certificate, and with m1's certificate from another CA: the handshake lets them through with
    // no identity (so that the refusal can be recorded), and the session refuses them
    const bare = new Agent(cluster.target, grpc.credentials.createSsl(readFileSync(join(cluster.pkiDir, 'ca.crt')), null, null, { checkServerIdentity: () => undefined }));
    const noCert = await new Promise<grpc.ServiceError | null>((resolve) => bare.Renew({ machine: 'm1', instanceId: 'x', seq: 1 }, { deadline: Date.now() + 5000 }, (err: grpc.ServiceError | null) => resolve(err)));
    bare.close();
    expect(noCert?.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(noCert?.details).toMatch(/renewal as machine m1 refused: this certificate is for no certificate signed by the cluster CA/);
    const otherPki = join(dir, 'other-pki');
    await initPki(otherPki, { name: 'another CA' });
    const forged = await issueToDirectory(otherPki, { role: 'agent', name: 'm1' });
    const alien = new Agent(cluster.target, grpc.credentials.createSsl(readFileSync(join(cluster.pkiDir, 'ca.crt')), readFileSync(forged.key), readFileSync(forged.cert), { checkServerIdentity: () => undefined }));
    const otherCa = await new Promise<grpc.ServiceError>((resolve) => {
      const stream = alien.Session();
      stream.on('data', () => undefined);
      stream.on('error', resolve);
      stream.write({ hello: { machine: 'm1', instanceId: 'alien', agentVersion: '0.1.0', slots: [] } });
    });
    alien.close();
    expect(otherCa.code).toBe(grpc.status.PERMISSION_DENIED);
    const events = await waitFor('the refusals recorded', async () => {
      const found = (await cluster.client().listEvents({ machine: 'm1', limit: 50 })).events.filter((e) => e.kind === 'agent.identity-refused');
      return found.length >= 4 ? found : undefined;
    });
    expect(events.map((e) => e.reason.replace(/\(.*\)/, '(…)'))).toEqual([
      'hello as machine m1 refused: the caller (…) presented agent m2',
      'renewal as machine m1 refused: the caller (…) presented agent m2',
      'renewal as machine m1 refused: the caller (…) presented no certificate signed by the cluster CA',
      'hello as machine m1 refused: the caller (…) presented no certificate signed by the cluster CA',
    ]);
    expect(events[0]!.reason).toMatch(/as machine m1 refused: the caller .* presented agent m2/);
    // the real m1 is still connected, up and not fenced
    const m1 = (await cluster.client().listMachines()).machines.find((m) => m.name === 'm1')!;
    expect([m1.state, m1.connected]).toEqual(['up', true]);
    const kinds = (await cluster.client().listEvents({ machine: 'm1', limit: 100 })).events.map((e) => e.kind);
    expect(kinds.filter((k) => k === 'agent.disconnected')).toEqual([]);
  });

  it('refuses an agent of an incompatible version at hello with an event naming both versions; the machine keeps its session', async () => {
    const { Agent } = loadContract().slotctl.v1;
    const m2 = new CertificateFiles(tlsPaths(cluster.pkiDir, { role: 'agent', name: 'm2' }));
    const client = new Agent(cluster.target, channelCredentials(m2, expectIdentity('coordinator')));
    const hello = (agentVersion: string) =>
      new Promise<grpc.ServiceError>((resolve) => {
        const stream = client.Session();
        stream.on('data', () => undefined);
        stream.on('error', resolve);
        stream.write({ hello: { machine: 'm2', instanceId: 'upgraded-too-far', agentVersion, slots: [] } });
      });
    try {
      const newer = await hello('0.99.0');
      expect(newer.code).toBe(grpc.status.FAILED_PRECONDITION);
      expect(newer.details).toBe('agent of machine m2 refused: agent 0.99.0 and coordinator 0.1.0: the agent is newer than the coordinator');
      expect(newer.metadata.get('slotctl-hint')[0]?.toString()).toMatch(/upgrade the coordinators first/);
      expect((await hello('garbage')).code).toBe(grpc.status.FAILED_PRECONDITION);
    } finally {
      client.close();
      m2.close();
    }
    const events = await waitFor('the refusals recorded', async () => {
      const found = (await cluster.client().listEvents({ machine: 'm2', limit: 50 })).events.filter((e) => e.kind === 'agent.version-refused');
      return found.length >= 2 ? found : undefined;
    });
    expect(events.map((e) => e.reason).sort()).toEqual([
      'agent 0.99.0 and coordinator 0.1.0: the agent is newer than the coordinator; upgrade the coordinators first, then the agents one machine at a time',
      'agent version "garbage" is not a version (X.Y.Z); install a released slotctl package on this machine',
    ]);
    // refused before it could replace anything: the real m2 is still connected and up
    const machine = (await cluster.client().listMachines()).machines.find((m) => m.name === 'm2')!;
    expect([machine.state, machine.connected, machine.agentVersion]).toEqual(['up', true, '0.1.0']);
  });

  it('applies the desired state it is sent and reports every slot', async () => {
    await waitFor('m1 to apply its desired state', () => (applyLines('m1').length > 0 ? true : undefined));
    expect(applyLines('m1')[0]).toMatchObject({ changed: 2, refused: 0 });
    const applied = JSON.parse(readFileSync(appliedFile('m1'), 'utf8')) as { slots: Record<string, { role: string; epoch: number }> };
    expect(applied.slots).toMatchObject({ 'se01-m1': { role: 'MASTER', epoch: 1 }, 'se02-m1': { role: 'REPLICA', epoch: 1 } });
    await waitFor('every slot to serve, as reported to the coordinator', async () => {
      const stores = (await cluster.client().listStores()).stores;
      return stores.length === 2 && stores.every((s) => s.master?.state === 'SERVING' && s.replica?.state === 'SERVING' && s.master.epochApplied === 1) ? true : undefined;
    }, 30_000);
  });

  let m2Pids: Record<string, number> = {};

  it('turns a killed agent suspect, then down within lease + a fifth + 1 s, with events', async () => {
    m2Pids = Object.fromEntries((await cluster.client().listSlots({ machine: 'm2' })).slots.map((s) => [s.name, s.pid]));
    expect(Object.keys(m2Pids).sort()).toEqual([`${PREFIX}01-m2`, `${PREFIX}02-m2`]);
    expect(Object.values(m2Pids).every((pid) => pid > 0)).toBe(true);
    const killedAt = Date.now();
    await cluster.agents.get('m2')!.crash();
    await cluster.waitForMachines('suspect', ['m2'], 4000);
    await cluster.waitForMachines('down', ['m2'], 7000);
    const downAfter = Date.now() - killedAt;
    expect(downAfter).toBeLessThanOrEqual(7000 + 300 /* polling slack */);
    const events = (await cluster.client().listEvents({ machine: 'm2', limit: 50 })).events.filter((e) => Date.parse(e.at) >= killedAt - 1);
    const kinds = events.map((e) => e.kind);
    expect(kinds.indexOf('machine.suspect')).toBeGreaterThanOrEqual(0);
    expect(kinds.indexOf('machine.down')).toBeGreaterThan(kinds.indexOf('machine.suspect'));
    const down = events.find((e) => e.kind === 'machine.down')!;
    expect(down.reason).toMatch(/lease of 5000 ms \(\+ 1000 ms margin\) expired/);
    // measured on the coordinator's own clock: the last heartbeat was at most one interval before the kill
    const lastBeat = Date.parse((await cluster.client().listMachines()).machines.find((m) => m.name === 'm2')!.lastHeartbeat);
    expect(Date.parse(down.at) - lastBeat).toBeLessThanOrEqual(6000 + 300 /* the liveness tick */);
    expect((await cluster.slotctl(['status'])).exitCode).toBe(3);
    // Its fence outlived it: the master slot it left running was killed when the lease ran out; the replica serves on.
    const fenced = JSON.parse(readFileSync(join(dir, 'agents', 'm2', 'fenced.json'), 'utf8')) as { slots: { slot: string; killed: number }[] };
    expect(fenced.slots).toEqual([expect.objectContaining({ slot: 'se02-m2', killed: m2Pids['se02-m2'] })]);
    expect(pidAlive(m2Pids['se02-m2']!)).toBe(false);
    expect(pidAlive(m2Pids['se01-m2']!)).toBe(true);
  });

  it('brings a restarted agent back: its store failed over meanwhile, its old master returns as replica, its replica was re-adopted', async () => {
    const earlier = applyLines('m2').length; // the log file is appended to across restarts
    // m2 was down for longer than its lease: se02 (mastered on m2) failed over to se02-m1
    await waitFor('the failover of se02', async () => ((await cluster.client().listStores()).stores.find((s) => s.name === 'se02')?.master?.name === 'se02-m1' ? true : undefined), 20_000);
    cluster.startAgent('m2');
    await cluster.waitForMachines('up', ['m2'], AGENT_START_MS);
    await waitFor('m2 to apply its desired state', () => (applyLines('m2').length > earlier ? true : undefined));
    expect(applyLines('m2')[earlier]).toMatchObject({ changed: 1, unchanged: 1, refused: 0 });
    const applied = JSON.parse(readFileSync(appliedFile('m2'), 'utf8')) as { slots: Record<string, { role: string; epoch: number }> };
    expect(applied.slots).toMatchObject({ 'se01-m2': { role: 'REPLICA', epoch: 1 }, 'se02-m2': { role: 'REPLICA', epoch: 2 } });
    // nothing was at risk (no mail), so the old master starts as replica by itself; the replica kept serving
    const slots = await waitFor('both slots of m2 to serve', async () => {
      const all = (await cluster.client().listSlots({ machine: 'm2' })).slots;
      return all.length === 2 && all.every((s) => s.state === 'SERVING') ? all : undefined;
    }, 20_000);
    const replica = slots.find((s) => s.name === 'se01-m2')!;
    expect(replica.pid).toBe(m2Pids['se01-m2']);
    expect(replica.stateReason).toMatch(/re-adopted running cyrmaster/);
    expect(slots.find((s) => s.name === 'se02-m2')).toMatchObject({ role: 'REPLICA', epochApplied: 2 });
    const records = (await cluster.client().listAtRisk({ store: 'se02', all: true })).records;
    expect(records.map((r) => r.state)).toEqual(['nothing-lost']);
  }, 120_000); // an agent start (AGENT_START_MS) and the waits around it

  it('holds the lease of an agent stopped for a restart (slots kept) 3 s longer: the machine goes down only after lease + hold + margin, and says why', async () => {
    // m2's agent, restarted with its slots kept on exit, then stopped (SIGTERM) as an upgrade does
    await cluster.agents.get('m2')!.stop();
    const log = cluster.agents.get('m2')!.logFile;
    const started = readLogLines(log).length;
    cluster.startAgent('m2', { keepSlotsOnExit: true });
    // this agent's own session (the machine may still read up from the one before)
    await waitFor('the new agent of m2 to connect', () => (readLogLines(log).slice(started).some((l) => l.msg === 'connected to coordinator') ? true : undefined), AGENT_START_MS);
    await cluster.waitForMachines('up', ['m2'], AGENT_START_MS);
    const before = readLogLines(log).length;
    const stoppedAt = Date.now();
    await cluster.agents.get('m2')!.stop();
    // its last heartbeat, saying restarting, was acknowledged with lease + hold: the masters serve ~7 s on it (lease
    // less a fifth, plus the hold), no longer the 4 s a restart had to come back in
    const handover = readLogLines(log).slice(before).find((l) => String(l.msg).startsWith('lease renewed for the agent started next')) as { leaseLeftMs: number } | undefined;
    expect(handover, 'the stopping agent renewed the lease for its successor').toBeDefined();
    expect(handover!.leaseLeftMs).toBeGreaterThan(4000);
    expect(handover!.leaseLeftMs).toBeLessThanOrEqual(7000);
    await cluster.waitForMachines('down', ['m2'], 20_000);
    const down = (await cluster.client().listEvents({ machine: 'm2', limit: 50 })).events.filter((e) => Date.parse(e.at) >= stoppedAt - 1).find((e) => e.kind === 'machine.down')!;
    expect(down.reason).toMatch(/restart hold of 3000 ms/);
    // on the coordinator's own clock: not before lease + hold + margin after the last heartbeat
    const lastBeat = Date.parse((await cluster.client().listMachines()).machines.find((m) => m.name === 'm2')!.lastHeartbeat);
    expect(Date.parse(down.at) - lastBeat).toBeGreaterThanOrEqual(9000);
    cluster.startAgent('m2');
    await cluster.waitForMachines('up', ['m2'], AGENT_START_MS);
  }, 120_000);

  let rotatedSerial = '';

  it('takes a renewed certificate while it serves, without a restart and without losing its lease', async () => {
    const agent = cluster.agents.get('m1')!;
    const pid = agent.pid;
    const renewed = await issueToDirectory(cluster.pkiDir, { role: 'agent', name: 'm1' }, { days: 30 });
    rotatedSerial = new X509Certificate(readFileSync(renewed.cert)).serialNumber;
    // read again within the reload period (10 s)
    await waitFor('m1 to take the renewed certificate', () => (readLogLines(agent.logFile).some((l) => l.msg === 'renewed certificate taken for new connections') ? true : undefined), 25_000);
    expect([agent.exited, agent.pid]).toEqual([false, pid]);
    const m1 = (await cluster.client().listMachines()).machines.find((m) => m.name === 'm1')!;
    expect([m1.state, m1.connected]).toEqual(['up', true]);
    // the next connection (the coordinator restart below) shows which certificate it came with
  });

  it('keeps every row across a coordinator restart; agents reconnect by themselves and re-apply idempotently', async () => {
    const appliedBefore = applyLines('m1').length;
    const fileBefore = readFileSync(appliedFile('m1'), 'utf8');
    const mtimeBefore = statSync(appliedFile('m1')).mtimeMs;
    await cluster.coordinator!.stop();
    const rowsBefore = dumpDatabase(cluster.databasePath);

    await cluster.startCoordinator();
    const rowsAfter = dumpDatabase(cluster.databasePath);
    expect(rowsAfter.stores).toEqual(rowsBefore.stores);
    // Agents may already have re-reported what they observe; what was declared must be exactly as before.
    const declared = (rows: unknown[]) =>
      rows.map((r) => {
        const { name, store, machine, ip, data_path, meta_path, admin_stopped } = r as Record<string, unknown>;
        return { name, store, machine, ip, data_path, meta_path, admin_stopped };
      });
    expect(declared(rowsAfter.slots!)).toEqual(declared(rowsBefore.slots!));
    expect(rowsAfter.machines!.map((m) => (m as { name: string }).name).sort()).toEqual(['m1', 'm2']);
    expect(rowsAfter.events!.slice(0, rowsBefore.events!.length)).toEqual(rowsBefore.events);

    await waitFor('both agents to reconnect', async () => {
      const machines = (await cluster.client().listMachines()).machines;
      return machines.length === 2 && machines.every((m) => m.connected && m.state === 'up') ? true : undefined;
    }, 10_000);
    await waitFor('m1 to answer the re-sent desired state', () => (applyLines('m1').length > appliedBefore ? true : undefined));
    expect(applyLines('m1').at(-1)).toMatchObject({ changed: 0, unchanged: 2, refused: 0 });
    expect(readFileSync(appliedFile('m1'), 'utf8')).toBe(fileBefore);
    expect(statSync(appliedFile('m1')).mtimeMs).toBe(mtimeBefore);
    // The restart did not make anything look down: agents were back within the grace period.
    const events = (await cluster.client().listEvents({ afterId: (rowsBefore.events!.at(-1) as { id: number }).id, limit: 100 })).events;
    expect(events.map((e) => e.kind)).not.toContain('machine.down');
    // m1 came back with the certificate renewed while it served
    const connected = events.filter((e) => e.kind === 'agent.connected' && e.machine === 'm1').map((e) => JSON.parse(e.dataJson) as { certificate?: { serial: string } });
    expect(connected.length).toBeGreaterThan(0);
    expect(connected.map((d) => d.certificate?.serial)).toEqual(connected.map(() => rotatedSerial));
  });

  it('raises a critical event when fence.json cannot be written, and serves again once it can, without restarting the agent', async () => {
    const agent = cluster.agents.get('m1')!;
    const pid = agent.pid;
    const file = join(dir, 'agents', 'm1', 'fence.json');
    const mastersBefore = (await cluster.client().listSlots({ machine: 'm1' })).slots.filter((s) => s.role === 'MASTER').map((s) => s.name).sort();
    expect(mastersBefore.length).toBeGreaterThan(0);
    // a directory where the file was: every write's rename fails (EISDIR) as on a broken state disk
    for (;;) {
      rmSync(file, { force: true });
      try {
        mkdirSync(file);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err; // the agent wrote it again in between
      }
    }
    try {
      const events = await waitFor('the critical events', async () => {
        const found = (await cluster.client().listEvents({ machine: 'm1', limit: 100 })).events.filter((e) => e.kind === 'slot.fence-write-failed');
        return found.length >= mastersBefore.length ? found : undefined;
      }, 20_000);
      expect(events.map((e) => e.slot).sort()).toEqual(mastersBefore);
      expect(events[0]!.reason).toMatch(/^critical: cannot write \S*fence\.json \(EISDIR\): the fence keeps the deadline it last read/);
    } finally {
      rmdirSync(file);
    }
    // writes succeed again: the masters serve (stopped meanwhile at the deadline the fence knew, or not), and the agent
    // process is the same one: no crash, no restart loop
    await waitFor('m1 to write fence.json again and serve every slot', async () => {
      if (!existsSync(file)) return undefined;
      const slots = (await cluster.client().listSlots({ machine: 'm1' })).slots;
      return slots.every((s) => s.state === 'SERVING') && (await cluster.client().listMachines()).machines.find((m) => m.name === 'm1')?.state === 'up' ? true : undefined;
    }, 30_000);
    expect([agent.exited, agent.pid]).toEqual([false, pid]);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({ format: 1 });
  });

  it('refuses a desired state with an epoch older than the agent has applied', async () => {
    // An agent whose state says it applied epoch 7 as master of s01 meets a coordinator at epoch 1.
    // m1 is silent while its agent restarts: on a busy host that took 7 s (node, slot-syslogd, the fence), past the
    // 5 s lease, so m1 went down and its stores failed over (se01 to epoch 2, se02-m1 a replica at 3) before it came
    // back. This test is about the epoch check, not liveness: a coordinator with a long lease keeps se01 at epoch 1.
    await cluster.coordinator!.stop();
    cluster.options.lease = '60s';
    await cluster.startCoordinator();
    const stateDir = join(dir, 'agents', 'm1');
    await cluster.agents.get('m1')!.stop();
    const earlier = applyLines('m1').length;
    const state = JSON.parse(readFileSync(appliedFile('m1'), 'utf8')) as { slots: Record<string, { epoch: number }> };
    state.slots['se01-m1']!.epoch = 7;
    mkdirSync(stateDir, { recursive: true });
    writeFileSync(appliedFile('m1'), JSON.stringify(state));
    cluster.startAgent('m1');
    await waitFor('the refusal event', async () => {
      const events = (await cluster.client().listEvents({ machine: 'm1', limit: 20 })).events;
      return events.find((e) => e.kind === 'slot.apply-refused' && e.slot === 'se01-m1');
    }, AGENT_START_MS).catch((err: Error) => {
      // once seen beside two busy loops, with nothing kept to say why: what the agent said last goes with the failure
      const agent = cluster.agents.get('m1')!;
      const tail = logTail(agent.logFile, 15);
      throw new Error(`${err.message}; agent m1 ${agent.exited ? `exited (code ${agent.exitCode ?? 'signal'})` : 'running'}, its log ends:\n  ${tail.join('\n  ')}`);
    });
    // The agent logs its answer before sending it, but pino writes asynchronously: the line was seen missing right
    // after the event. Every desired state since the restart: se01-m1 refused, se02-m1 as it was.
    const since = await waitFor('m1 to log its answer', () => (applyLines('m1').length > earlier ? applyLines('m1').slice(earlier) : undefined), 5000);
    for (const line of since) expect(line).toMatchObject({ changed: 0, unchanged: 1, refused: 1 });
    const after = JSON.parse(readFileSync(appliedFile('m1'), 'utf8')) as { slots: Record<string, { epoch: number }> };
    expect(after.slots['se01-m1']!.epoch).toBe(7);
    const refused = (await cluster.client().listEvents({ machine: 'm1', limit: 20 })).events.find((e) => e.kind === 'slot.apply-refused')!;
    expect(refused.reason).toMatch(/stale epoch 1: epoch 7 is already applied/);
    // and it does not serve: the slot was not started
    const slot = (await cluster.client().listSlots({ machine: 'm1' })).slots.find((s) => s.name === 'se01-m1')!;
    expect(slot.state).not.toBe('SERVING');
    expect(slot.pid).toBe(0);
  }, 120_000); // an agent start (AGENT_START_MS) and the waits around it
});
