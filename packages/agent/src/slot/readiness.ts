// When a started cyrmaster counts as ready: it greets on its slot IP and, for a master, accepts LMTP on its
// store's service IP; and when a start has failed.
import { imapGreets, pidAlive, tcpAccepts } from './process.js';

/** How long a master that greets on its slot IP may take to accept LMTP on its service IP before it is started again. */
export const SERVICE_LISTEN_GRACE_MS = 2000;

export type Readiness =
  /** Ready: when it first greeted on the slot IP and when, after that, its store's address accepted LMTP. */
  | { outcome: 'ready'; greetedMs: number; servingMs: number }
  /** The start failed: killed and started again, within the crash limit. */
  | { outcome: 'failed'; why: string }
  /** The process is no longer the slot's to judge (killed by the fence, stopped, crashed): its exit is handled there. */
  | { outcome: 'gone' };

export async function awaitReady(input: {
  pid: number | undefined;
  slotIp: string;
  /** For a master: its store's address, which must accept LMTP too. */
  serviceIp: string | undefined;
  ports: { imap: number; lmtp: number };
  timeoutMs: number;
  /** Still the start being judged (the slot starting, with this PID). */
  current: () => boolean;
}): Promise<Readiness> {
  const { pid, slotIp, serviceIp, ports } = input;
  const started = performance.now();
  const deadline = started + input.timeoutMs;
  let deafSince: number | undefined;
  let greetedAt: number | undefined;
  while (performance.now() < deadline && input.current()) {
    // Greeted once is enough: each greeting is an imapd cyrmaster forks, work a loaded host does not need while
    // the loop waits for the service address below.
    if (greetedAt !== undefined || (await imapGreets(slotIp, ports.imap, 500))) {
      greetedAt ??= performance.now();
      // the greeting may have been in flight while the process was killed (the fence): ready only if the process
      // spawned is still the slot's and alive; otherwise its exit is handled as a crash or a fence
      if (!input.current() || !pid || !pidAlive(pid)) return { outcome: 'gone' };
      // A master serves on its store's address. cyrmaster binds its sockets once, at start (before it greets on
      // the slot IP): an address missing at that moment (released by a lease that lapsed during the start, an
      // operator) leaves it deaf there for good, although it greets, and the address put back later does not help
      // (seen: a master reported serving whose service IP refused every LMTP connection). Not ready then: started again.
      if (serviceIp && !(await tcpAccepts(serviceIp, ports.lmtp, 300))) {
        deafSince ??= performance.now();
        if (performance.now() - deafSince > SERVICE_LISTEN_GRACE_MS) {
          return { outcome: 'failed', why: `cyrmaster answers on ${slotIp} but not for its store on ${serviceIp}:${ports.lmtp} (the address was missing when it bound its sockets)` };
        }
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      return { outcome: 'ready', greetedMs: Math.round(greetedAt - started), servingMs: Math.round(performance.now() - started) };
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  if (!input.current()) return { outcome: 'gone' };
  // A cyrmaster that never greets stays deaf: it binds its listeners once, and one that failed (an address or a port
  // not yet free at that moment) is not retried. Left alone, the slot would sit in STARTING for good (seen in CI:
  // 180 s). A start that timed out is a failed start.
  const alive = pid !== undefined && pidAlive(pid);
  return { outcome: 'failed', why: `IMAP on ${slotIp}:${ports.imap} did not answer within ${input.timeoutMs} ms (cyrmaster pid ${pid ?? '?'} ${alive ? 'running' : 'gone'})` };
}
