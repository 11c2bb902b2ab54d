// Following the leader from slotctl's side: two in-process Admin servers on loopback, in the clear (the --insecure
// credentials), one a follower that names the other as leader.
import { createServer, type Socket } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { UnavailableError, loadContract, notLeaderStatus, serverCredentials, type AdminHandlers } from '@slotctl/shared';
import { Admin } from './admin-client.js';
import { follow } from './follow.js';

interface FakeCoordinator {
  address: string;
  calls: number;
  /** undefined: it leads (answers); a string: a follower naming that leader; null: a follower knowing none. */
  leader: string | null | undefined;
  server: grpc.Server;
}

async function fakeCoordinator(): Promise<FakeCoordinator> {
  const server = new grpc.Server();
  const fake: FakeCoordinator = { address: '', calls: 0, leader: undefined, server };
  const handlers: Partial<AdminHandlers> = {
    Status: (_call, callback) => {
      fake.calls++;
      if (fake.leader === undefined) callback(null, { healthy: true, problems: [`answered by ${fake.address}`] });
      else callback(notLeaderStatus(fake.address, fake.leader ?? undefined));
    },
    GetOperation: (call, callback) => {
      fake.calls++;
      const at = '2026-12-04T00:00:00.000Z';
      const operation = { id: call.request.id, kind: 'switchover', store: 's01', state: 'succeeded', createdAt: at, updatedAt: at, paramsJson: '{"from":"m1","to":"m2","epoch":1}' };
      if (fake.leader === undefined) callback(null, { operation });
      else callback(notLeaderStatus(fake.address, fake.leader ?? undefined));
    },
  };
  server.addService(loadContract().slotctl.v1.Admin.service, handlers as AdminHandlers);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', serverCredentials(undefined), (err, p) => (err ? reject(err) : resolve(p))));
  fake.address = `127.0.0.1:${port}`;
  return fake;
}

/** A loopback port nothing listens on: connections are refused at once. */
async function closedPort(): Promise<string> {
  const fake = await fakeCoordinator();
  fake.server.forceShutdown();
  return fake.address;
}

describe('Admin with several coordinators', () => {
  let a: FakeCoordinator;
  let b: FakeCoordinator;
  beforeAll(async () => {
    [a, b] = await Promise.all([fakeCoordinator(), fakeCoordinator()]);
  });
  afterAll(() => {
    a.server.forceShutdown();
    b.server.forceShutdown();
  });
  const reset = (leaderOfA: string | null | undefined, leaderOfB: string | null | undefined) => {
    a.calls = b.calls = 0;
    a.leader = leaderOfA;
    b.leader = leaderOfB;
  };

  it('follows a follower to the leader it names, and starts there next time', async () => {
    reset(b.address, undefined);
    const admin = new Admin(`${a.address},${b.address}`, 5000);
    try {
      expect((await admin.status()).problems).toEqual([`answered by ${b.address}`]);
      expect(admin.current).toBe(b.address);
      await admin.status();
      expect([a.calls, b.calls]).toEqual([1, 2]);
    } finally {
      admin.close();
    }
  });

  it('tries the next address when the leader named is not in the list, or the first cannot be reached', async () => {
    reset('10.0.0.9:7400', undefined);
    const admin = new Admin(`${a.address},${b.address}`, 5000);
    const closed = new Admin(`${await closedPort()},${b.address}`, 5000);
    try {
      await admin.status();
      await closed.status();
      expect([a.calls, b.calls]).toEqual([1, 2]);
    } finally {
      admin.close();
      closed.close();
    }
  });

  it('leaves an address that takes the connection but never answers for the next', async () => {
    reset(undefined, undefined);
    const sockets: Socket[] = [];
    const silent = createServer((socket) => void sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const admin = new Admin(`127.0.0.1:${(silent.address() as { port: number }).port},${b.address}`, 2000);
    try {
      const started = Date.now();
      await admin.status();
      expect(Date.now() - started).toBeLessThan(1900); // half the call's timeout, not all of it
      expect(admin.current).toBe(b.address);
    } finally {
      admin.close();
      for (const s of sockets) s.destroy();
      silent.close();
    }
  });

  it('gives up naming every address tried and what each said', async () => {
    reset(null, null);
    const admin = new Admin(`${a.address},${b.address}`, 5000);
    try {
      const err = await admin.status().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UnavailableError);
      const message = (err as Error).message;
      expect(message).toContain(`tried ${a.address} (coordinator ${a.address} is not the leader, and no leader is elected yet`);
      expect(message).toContain(`, ${b.address} (coordinator ${b.address} is not the leader`);
      expect([a.calls, b.calls]).toEqual([1, 1]);
    } finally {
      admin.close();
    }
  });

  it('stops when two followers name each other: each address once per call', async () => {
    reset(b.address, a.address);
    const admin = new Admin(`${a.address},${b.address}`, 5000);
    try {
      await expect(admin.status()).rejects.toThrow(/cannot reach the leading coordinator/);
      expect([a.calls, b.calls]).toEqual([1, 1]);
    } finally {
      admin.close();
    }
  });

  it('with a single address, answers as before: no retry, even at a leader it names', async () => {
    reset(b.address, undefined);
    const admin = new Admin(a.address, 5000);
    try {
      await expect(admin.status()).rejects.toThrow(`cannot reach the coordinator at ${a.address} (coordinator ${a.address} is not the leader; the leader is at ${b.address})`);
      expect([a.calls, b.calls]).toEqual([1, 0]);
    } finally {
      admin.close();
    }
  });

  it('following an operation rides out an election', async () => {
    reset(null, null);
    const admin = new Admin(`${a.address},${b.address}`, 5000);
    const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      setTimeout(() => {
        a.leader = b.address;
        b.leader = undefined;
      }, 700);
      const op = await follow(admin, 'op-1', false, 10_000);
      expect(op.state).toBe('succeeded');
      expect(String(err.mock.calls[0]?.[0])).toContain('still following op-1');
      expect(err).toHaveBeenCalledTimes(1);
    } finally {
      out.mockRestore();
      err.mockRestore();
      admin.close();
    }
  });
});
