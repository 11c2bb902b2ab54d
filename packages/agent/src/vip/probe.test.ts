// The probe's window counts from arping's start, not its spawn; an answer ends it at once; a failing arping is an
// error, never "free". A stand-in arping (a shell script) plays each case.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { probeAddress, ProbeError } from './probe.js';

const dir = mkdtempSync(join(tmpdir(), 'slotctl-probe-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function fake(name: string, body: string): string[] {
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return [path];
}

describe('probeAddress', () => {
  it('listens the whole window from the header on, however late arping starts', async () => {
    const command = fake('slow-start', 'sleep 0.3; echo "ARPING 10.9.0.5 from 0.0.0.0 veth0"; exec sleep 5');
    const r = await probeAddress({ iface: 'veth0', ip: '10.9.0.5', probeMs: 100, command });
    expect(r.free).toBe(true);
    if (!r.free) return;
    expect(r.spawnMs).toBeGreaterThanOrEqual(250);
    expect(r.listenedMs).toBeGreaterThanOrEqual(99);
  });

  it('ends at the first answer and names the owner', async () => {
    const command = fake('owner', 'echo "ARPING 10.9.0.5 from 0.0.0.0 veth0"; sleep 0.05; echo "Unicast reply from 10.9.0.5 [AA:BB:CC:00:11:22]  0.612ms"; exec sleep 5');
    const started = performance.now();
    const r = await probeAddress({ iface: 'veth0', ip: '10.9.0.5', probeMs: 2000, command });
    expect(r).toMatchObject({ free: false, owner: 'AA:BB:CC:00:11:22' });
    expect(performance.now() - started).toBeLessThan(1500);
  });

  it('does not call an address free when the agent was held up past the window while the answer came', async () => {
    // The answer reaches the pipe while the agent's event loop is busy (a loaded agent), and when it runs again the
    // window's timer is due too: the answer must win. The stand-in answers once the test says so (a file appears).
    const go = join(dir, 'answer-now');
    const command = fake('late-look', `echo "ARPING 10.9.0.5 from 0.0.0.0 veth0"; while [ ! -e ${go} ]; do sleep 0.01; done; echo "Unicast reply from 10.9.0.5 [AA:BB:CC:00:11:44]  0.3ms"; exec sleep 5`);
    const probe = probeAddress({ iface: 'veth0', ip: '10.9.0.5', probeMs: 1000, command });
    // arping has started and its header was read (the window runs), or the header is read with the answer later
    await new Promise((r) => setTimeout(r, 300));
    // held up for longer than the window, outside the timers' phase (the next turn runs due timers before reading
    // the pipe); the answer is written meanwhile
    await new Promise<void>((r) => setImmediate(() => {
      writeFileSync(go, '');
      for (const until = performance.now() + 1500; performance.now() < until; );
      r();
    }));
    expect(await probe).toMatchObject({ free: false, owner: 'AA:BB:CC:00:11:44' });
  });

  it('takes an arping that found an owner and exited (exit 1, "Received 1") as taken', async () => {
    const command = fake('exited', 'echo "ARPING 10.9.0.5 from 0.0.0.0 veth0"; echo "Sent 1 probes (1 broadcast(s))"; echo "Received 1 response(s)"; exit 1');
    expect(await probeAddress({ iface: 'veth0', ip: '10.9.0.5', probeMs: 500, command })).toMatchObject({ free: false });
  });

  it("counts the owner's own announcement (a request from it) as an answer, and an interface without ARP as free", async () => {
    const announcing = fake('announcing', 'echo "ARPING 10.9.0.5 from 0.0.0.0 veth0"; echo "Unicast request from 10.9.0.5 [AA:BB:CC:00:11:33]  0.1ms"; exec sleep 5');
    expect(await probeAddress({ iface: 'veth0', ip: '10.9.0.5', probeMs: 500, command: announcing })).toMatchObject({ free: false, owner: 'AA:BB:CC:00:11:33' });
    const noarp = fake('noarp', 'echo "Interface \"lo\" is not ARPable"; exit 0');
    expect(await probeAddress({ iface: 'lo', ip: '10.9.0.5', probeMs: 100, command: noarp })).toMatchObject({ free: true, listenedMs: 0 });
  });

  it('is an error when arping fails or never starts, never "free"', async () => {
    const failing = fake('failing', 'echo "arping: unknown iface veth0" >&2; exit 2');
    await expect(probeAddress({ iface: 'veth0', ip: '10.9.0.5', probeMs: 100, command: failing })).rejects.toThrow(/failed \(exit 2\): arping: unknown iface veth0/);
    const silent = fake('silent', 'exec sleep 5');
    await expect(probeAddress({ iface: 'veth0', ip: '10.9.0.5', probeMs: 100, startTimeoutMs: 300, command: silent })).rejects.toBeInstanceOf(ProbeError);
  });

  it('refuses an address or interface that is not one before anything runs (a rejected promise, never a throw)', async () => {
    await expect(probeAddress({ iface: 'veth0; rm', ip: '10.9.0.5', probeMs: 100 })).rejects.toThrow(/not valid/);
    await expect(probeAddress({ iface: 'veth0', ip: '10.9.0.5 -x', probeMs: 100 })).rejects.toThrow();
  });
});
