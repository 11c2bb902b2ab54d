// The duplicate-address probe before an address is taken (`arping -D`): does any host on the link answer for it?
// Its window is counted from the moment arping has started — the header it prints before its first probe leaves —
// not from the spawn: a fork on a loaded host took up to 60 ms (bench/arp-probe.ts), which a window counted from the
// spawn would have taken out of the listening. A real owner on the same link answers within milliseconds (measured
// on a veth link, 500 probes: p99 1.1 ms, max 3.2 ms; beside two busy loops p99 5.3 ms, max 5.6 ms), so the default
// window of 25 ms is over 4 times the slowest answer seen on a loaded host; it was 100 ms, and every master start
// waited the difference. On virtual machines whose CPUs are stolen for tens of milliseconds, raise --arp-probe. stdbuf makes arping write each line as it happens (a pipe would hold them until it exits); LC_ALL=C keeps
// its words parseable.
import { execa } from 'execa';
import { assertIp } from '@slotctl/shared/base';

/** The default --arp-probe window (see above). */
export const DEFAULT_ARP_PROBE_MS = 25;

export interface ProbeOptions {
  iface: string;
  ip: string;
  /** How long to listen for an answer once arping has started. */
  probeMs: number;
  /** How long arping may take to start (print its header) before the probe fails. */
  startTimeoutMs?: number;
  /** The command and its leading arguments (tests put a stand-in here). */
  command?: readonly string[];
}

export type ProbeResult =
  | { free: true; spawnMs: number; listenedMs: number }
  | { free: false; owner: string; spawnMs: number; replyMs: number };

export class ProbeError extends Error {}

const HEADER = /^ARPING /m;
// in DAD mode a reply counts, and so does the owner's own request for the address (its gratuitous announcement)
const REPLY = /(?:reply|request) from (\S+)\s+\[([0-9A-Fa-f:]+)\]/;
/** iputils arping on an interface without ARP (loopback, a point-to-point link) says so and exits 0: nobody can answer. */
const NOT_ARPABLE = /not ARPable/i;

export async function probeAddress(o: ProbeOptions): Promise<ProbeResult> {
  assertIp(o.ip, 'address to probe');
  if (!/^[A-Za-z0-9._-]{1,15}$/.test(o.iface)) throw new ProbeError(`interface name "${o.iface}" is not valid`);
  const command = o.command ?? ['stdbuf', '-oL', 'arping'];
  // arping sends a probe a second and stops after -c of them or -w seconds: both lie past the window, which ends it
  // (or the first answer: -f)
  const seconds = Math.ceil(o.probeMs / 1000) + 1;
  const spawned = performance.now();
  const child = execa(command[0]!, [...command.slice(1), '-D', '-f', '-c', String(seconds), '-w', String(seconds), '-I', o.iface, o.ip], { reject: false, env: { LC_ALL: 'C' }, buffer: false, stdin: 'ignore', stderr: 'pipe' });
  return new Promise<ProbeResult>((resolve, reject) => {
    let out = '';
    let err = '';
    let startedAt: number | undefined;
    let done = false;
    const finish = (r: ProbeResult | Error) => {
      if (done) return;
      done = true;
      clearTimeout(startTimer);
      clearTimeout(windowTimer);
      child.kill('SIGKILL');
      if (r instanceof Error) reject(r);
      else resolve(r);
    };
    let windowTimer: NodeJS.Timeout | undefined;
    const startTimer = setTimeout(() => finish(new ProbeError(`arping -D ${o.ip} on ${o.iface} did not start within ${o.startTimeoutMs ?? 2000} ms`)), o.startTimeoutMs ?? 2000);
    const look = () => {
      if (startedAt === undefined && HEADER.test(out)) {
        startedAt = performance.now();
        clearTimeout(startTimer);
        // The verdict "free" waits 5 ms more, through a turn of the event loop that reads what the pipe holds: a due
        // timer runs before pending I/O is read, so when the agent was held up for longer than the window, a reply
        // already in the pipe lost to the timer and a held address was called free (probe.test.ts).
        windowTimer = setTimeout(() => {
          windowTimer = setTimeout(() => finish({ free: true, spawnMs: startedAt! - spawned, listenedMs: performance.now() - startedAt! }), 5);
        }, o.probeMs);
      }
      const reply = REPLY.exec(out);
      if (reply) finish({ free: false, owner: reply[2]!, spawnMs: (startedAt ?? performance.now()) - spawned, replyMs: performance.now() - (startedAt ?? spawned) });
    };
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      look();
    });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
    void child.then((r) => {
      if (done) return;
      look();
      if (done) return;
      // it ended by itself before the window did: an answer (exit 1 with "Received 1") or a failure
      if (/Received [1-9]/.test(out)) finish({ free: false, owner: 'unknown', spawnMs: (startedAt ?? performance.now()) - spawned, replyMs: performance.now() - (startedAt ?? spawned) });
      else if (r.exitCode === 0 && startedAt !== undefined) finish({ free: true, spawnMs: startedAt - spawned, listenedMs: performance.now() - startedAt });
      else if (r.exitCode === 0 && NOT_ARPABLE.test(out + err)) finish({ free: true, spawnMs: performance.now() - spawned, listenedMs: 0 });
      else finish(new ProbeError(`arping -D ${o.ip} on ${o.iface} failed (exit ${r.exitCode ?? r.signal}): ${(err || out).trim().slice(0, 300)}`));
    });
  });
}
