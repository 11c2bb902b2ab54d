import { describe, expect, it } from 'vitest';
import type { VipDriver } from './driver.js';
import { parseAddresses } from './ip.js';
import { parseAddressLine } from './address-watch.js';
import { SlotAddresses } from './slot-addresses.js';

/** An interface in memory (unit test of the reconciliation logic; the real ip driver is tested on namespaces). */
class MemoryInterface implements VipDriver {
  readonly name = 'memory';
  readonly addrs = new Set<string>();
  failBind = false;
  /** Addresses whose bind fails (another host answers for them). */
  readonly refuse = new Set<string>();
  /** Binds running now, and the most at once. */
  binding = 0;
  mostBinding = 0;
  /** An unbind whose address is gone from the interface but whose call has not returned yet. */
  gate: Promise<void> | undefined;
  async bind(ip: string) {
    this.mostBinding = Math.max(this.mostBinding, ++this.binding);
    await new Promise((r) => setTimeout(r, 5)); // a probe's wait
    this.binding--;
    if (this.failBind || this.refuse.has(ip)) throw new Error(`${ip} is answered for by another host`);
    this.addrs.add(ip);
  }
  async unbind(ip: string) {
    this.addrs.delete(ip);
    await this.gate;
  }
  async isBound(ip: string) {
    return this.addrs.has(ip);
  }
  async list() {
    return new Set(this.addrs);
  }
}

describe('a slot\'s addresses', () => {
  it('takes the slot IP and the service IP at once, and holds neither address of a start that fails', async () => {
    const nic = new MemoryInterface();
    const a = new SlotAddresses(nic);
    await a.take('10.0.0.1', '10.0.1.1');
    expect(nic.mostBinding).toBe(2);
    expect(a.heldServiceIp).toBe('10.0.1.1');
    const b = new SlotAddresses(nic);
    nic.refuse.add('10.0.0.2');
    await expect(b.take('10.0.0.2', '10.0.1.2')).rejects.toThrow('10.0.0.2 is answered for');
    expect(nic.addrs.has('10.0.1.2')).toBe(false);
    expect(b.heldServiceIp).toBeUndefined();
    nic.refuse.clear();
    nic.refuse.add('10.0.1.3');
    const c = new SlotAddresses(nic);
    await expect(c.take('10.0.0.3', '10.0.1.3')).rejects.toThrow('10.0.1.3 is answered for');
    expect(nic.addrs.has('10.0.0.3')).toBe(true); // its own address stays its own
    expect(c.heldServiceIp).toBeUndefined();
  });

  it('binds again a held service IP that vanished, and reports the repair', async () => {
    const nic = new MemoryInterface();
    const a = new SlotAddresses(nic);
    await a.take('10.0.0.1', '10.0.1.1');
    nic.addrs.delete('10.0.1.1'); // an operator's ip addr del
    const drifts = await a.reconcile(await nic.list(), { serviceIp: '10.0.1.1' }, true);
    expect(drifts).toEqual([{ ip: '10.0.1.1', kind: 'service IP', drift: 'missing', repaired: true }]);
    expect(nic.addrs.has('10.0.1.1')).toBe(true);
    expect(await a.reconcile(await nic.list(), { serviceIp: '10.0.1.1' }, true)).toHaveLength(0);
  });

  it('does not bind a service IP back without a lease, and releases it if it is still there', async () => {
    const nic = new MemoryInterface();
    const a = new SlotAddresses(nic);
    await a.take('10.0.0.1', '10.0.1.1');
    expect(await a.reconcile(await nic.list(), { serviceIp: '10.0.1.1' }, false)).toEqual([{ ip: '10.0.1.1', kind: 'service IP', drift: 'stray', repaired: true }]);
    expect(nic.addrs.has('10.0.1.1')).toBe(false);
    expect(await a.reconcile(await nic.list(), { serviceIp: '10.0.1.1' }, false)).toHaveLength(0);
  });

  it('releases the store\'s service IP from a slot that is not its master here', async () => {
    const nic = new MemoryInterface();
    const a = new SlotAddresses(nic);
    await a.take('10.0.0.1', undefined); // a replica
    nic.addrs.add('10.0.1.1');
    const drifts = await a.reconcile(await nic.list(), { serviceIp: '10.0.1.1' }, false);
    expect(drifts.map((d) => [d.ip, d.drift, d.repaired])).toEqual([['10.0.1.1', 'stray', true]]);
    expect([...nic.addrs]).toEqual(['10.0.0.1']);
  });

  it('says a service IP that cannot be bound again is a problem until it is', async () => {
    const nic = new MemoryInterface();
    const a = new SlotAddresses(nic);
    await a.take('10.0.0.1', '10.0.1.1');
    nic.addrs.delete('10.0.1.1');
    nic.failBind = true;
    const [drift] = await a.reconcile(await nic.list(), { serviceIp: '10.0.1.1' }, true);
    expect(drift).toMatchObject({ ip: '10.0.1.1', drift: 'missing', repaired: false });
    expect(a.serviceProblem).toMatch(/10\.0\.1\.1 is not bound/);
    nic.failBind = false;
    await a.reconcile(await nic.list(), { serviceIp: '10.0.1.1' }, true);
    expect(a.serviceProblem).toBeUndefined();
  });

  it('never sees a release half done: reconciliation waits for the lock', async () => {
    const nic = new MemoryInterface();
    const a = new SlotAddresses(nic);
    await a.take('10.0.0.1', '10.0.1.1');
    let open!: () => void;
    nic.gate = new Promise((r) => (open = r));
    const release = a.releaseService(); // the address is off the interface, the call not yet returned
    await new Promise((r) => setImmediate(r));
    const listed = await nic.list();
    expect(listed.has('10.0.1.1')).toBe(false);
    const reconciled = a.reconcile(listed, { serviceIp: '10.0.1.1' }, true);
    open();
    await release;
    expect(await reconciled).toHaveLength(0); // not "missing": it was being released
    expect(nic.addrs.has('10.0.1.1')).toBe(false);
  });
});

describe('parseAddresses', () => {
  it('reads the IPv4 addresses of ip -o -4 addr show', () => {
    const out = '2: eth0    inet 10.231.1.1/16 brd 10.231.255.255 scope global eth0\\       valid_lft forever preferred_lft forever\n2: eth0    inet 10.231.3.6/32 scope global eth0\\       valid_lft forever preferred_lft forever';
    expect([...parseAddresses(out)]).toEqual(['10.231.1.1', '10.231.3.6']);
    expect(parseAddresses('').size).toBe(0);
  });
});

describe('parseAddressLine', () => {
  it('reads added and deleted addresses as ip monitor prints them', () => {
    expect(parseAddressLine('3: d0    inet 10.9.9.9/32 scope global d0\\       valid_lft forever preferred_lft forever')).toEqual({ iface: 'd0', ip: '10.9.9.9', deleted: false });
    expect(parseAddressLine('Deleted 3: d0    inet 10.9.9.9/32 scope global d0\\       valid_lft forever')).toEqual({ iface: 'd0', ip: '10.9.9.9', deleted: true });
    expect(parseAddressLine('3: d0    inet6 fe80::1/64 scope link')).toBeUndefined();
  });
});
