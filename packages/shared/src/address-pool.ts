// Pure: a machine's pool of addresses for new slots (the cluster file's `slot_ips`): single IPv4 or IPv6 addresses
// and IPv4 ranges written FIRST-LAST. A replica moved to the machine takes the first address of its pool that no
// slot, store or machine uses, so operations that create slots (a replica move, a machine's evacuation) need no
// address from the operator.
import { isIP } from 'node:net';

/** At most this many addresses in one range: a pool is a handful of slots' worth, not a subnet. */
export const MAX_POOL_RANGE = 4096;

const v4 = (ip: string) => ip.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
const fromV4 = (n: number) => [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');

/** Why an entry of a pool is not one ('' when it is). */
export function poolEntryProblem(entry: string): string {
  const parts = entry.split('-');
  if (parts.length === 1) return isIP(entry) ? '' : `"${entry}" is not an IPv4 or IPv6 address, nor a range FIRST-LAST`;
  if (parts.length !== 2 || isIP(parts[0]!) !== 4 || isIP(parts[1]!) !== 4) return `"${entry}" is not a range of IPv4 addresses (FIRST-LAST, e.g. 10.0.1.10-10.0.1.40)`;
  const count = v4(parts[1]!) - v4(parts[0]!) + 1;
  if (count < 1) return `range "${entry}" ends before it begins`;
  if (count > MAX_POOL_RANGE) return `range "${entry}" holds ${count} addresses, more than ${MAX_POOL_RANGE}`;
  return '';
}

/** Every address of the pool, in its order (entries are assumed valid: poolEntryProblem). */
export function expandPool(entries: readonly string[]): string[] {
  const out: string[] = [];
  for (const entry of entries) {
    const [first, last] = entry.split('-');
    if (last === undefined) out.push(first!);
    else for (let n = v4(first!); n <= v4(last); n++) out.push(fromV4(n));
  }
  return out;
}

/** The first address of the pool not in `used`, or undefined when every one is taken. */
export function firstFree(entries: readonly string[], used: ReadonlySet<string>): string | undefined {
  return expandPool(entries).find((ip) => !used.has(ip));
}
