import { describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { loadContract } from '@slotctl/shared';
import { listen, parseHostPort } from './listener.js';

describe('listener', () => {
  it('reads host:port and [v6]:port, and nothing else', () => {
    expect(parseHostPort('127.0.0.1:7400')).toEqual({ host: '127.0.0.1', port: 7400 });
    expect(parseHostPort('coord.example:0')).toEqual({ host: 'coord.example', port: 0 });
    expect(parseHostPort('[::1]:7400')).toEqual({ host: '::1', port: 7400 });
    expect(parseHostPort('unix:/run/slotctl.sock')).toBeUndefined();
    expect(parseHostPort('127.0.0.1')).toBeUndefined();
    expect(parseHostPort('127.0.0.1:99999')).toBeUndefined();
  });

  it('serves gRPC calls on the port it listens on (port 0: a free one)', async () => {
    const { Agent } = loadContract().slotctl.v1;
    const server = new grpc.Server();
    server.addService(Agent.service, {
      Session: (call: grpc.ServerDuplexStream<unknown, unknown>) => call.end(),
      Renew: (_call: unknown, cb: grpc.sendUnaryData<{ seq: number; leaseMs: number }>) => cb(null, { seq: 7, leaseMs: 5000 }),
    });
    const { port, close } = await listen(server, '127.0.0.1:0', grpc.ServerCredentials.createInsecure());
    expect(port).toBeGreaterThan(0);
    const client = new Agent(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    const ack = await new Promise<{ seq: string | number }>((resolve, reject) =>
      client.Renew({ machine: 'm', instanceId: 'i', seq: 7 }, (err: grpc.ServiceError | null, res?: { seq: string | number }) => (err ? reject(err) : resolve(res!))),
    );
    expect(Number(ack.seq)).toBe(7);
    client.close();
    close();
    server.forceShutdown();
  });
});
