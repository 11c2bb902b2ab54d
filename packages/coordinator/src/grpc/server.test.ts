// An elected coordinator holds calls until it serves (or follows, or waited too long), on a real gRPC server on
// loopback: the held call reaches the leader's handler instead of a "not the leader" that would send it retrying.
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { loadContract, notLeaderOf } from '@slotctl/shared';
import { CoordinatorServer, type Handlers } from './server.js';

const contract = loadContract().slotctl.v1;
let server: CoordinatorServer | undefined;
let client: grpc.Client | undefined;

afterEach(async () => {
  client?.close();
  await server?.close(100);
  server = client = undefined;
});

async function start(): Promise<(method: string) => Promise<unknown>> {
  server = new CoordinatorServer('127.0.0.1:1', undefined);
  const port = await server.listen('127.0.0.1:0');
  const admin = new contract.Admin(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  client = admin;
  return (method) =>
    new Promise((resolve, reject) => {
      (admin as unknown as Record<string, (req: object, cb: (err: grpc.ServiceError | null, res: unknown) => void) => void>)[method]!({}, (err, res) => (err ? reject(err) : resolve(res)));
    });
}

const leaderHandlers = { agent: {}, admin: { Status: (_call: unknown, cb: grpc.sendUnaryData<object>) => cb(null, { coordinatorId: 'the-new-leader' }) } } as unknown as Handlers;

describe('CoordinatorServer', () => {
  it('hands a call held while elected to the leader handlers once it serves', async () => {
    const call = await start();
    server!.elected();
    const reply = call('Status');
    await new Promise((resolve) => setTimeout(resolve, 200));
    server!.serve(leaderHandlers);
    expect(await reply).toMatchObject({ coordinatorId: 'the-new-leader' });
  });

  it('answers a held call as a follower when leadership went elsewhere, or after waiting its longest', async () => {
    const call = await start();
    server!.elected();
    const refused = call('Status');
    server!.follow('10.0.0.9:7400');
    expect(notLeaderOf(await refused.catch((err: unknown) => err))).toEqual({ leader: '10.0.0.9:7400' });

    server!.elected(150);
    const started = performance.now();
    const timedOut = await call('Status').catch((err: unknown) => err);
    expect(notLeaderOf(timedOut)).toEqual({ leader: undefined });
    expect(performance.now() - started).toBeGreaterThanOrEqual(100);
  });

  it('answers at once while following', async () => {
    const call = await start();
    server!.follow(undefined);
    expect(notLeaderOf(await call('Status').catch((err: unknown) => err))).toEqual({ leader: undefined });
  });
});
