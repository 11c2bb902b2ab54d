// A mail load as an MTA makes it: LMTP deliveries to stores' service IPs at a steady rate, each message retried
// (same bytes, same Message-ID) after a temporary failure or a refused connection until it gets 250, and every 250
// recorded. Runs until SIGTERM, then finishes the messages in flight (up to --drain) and prints a JSON summary.
//   node --import tsx tools/load-generator.ts --targets '[{"store":"n01","host":"10.231.3.1","users":["u1"]}]' \
//     --rate 25 --out acked.ndjson
// The --out record (test/support/load-record.ts reads it) has a line per acknowledgement and per rejection and, last,
// the summary with the messages still in flight: the loss check needs to know what never finished. Each message
// counts the attempts cut off after its data was sent, the only ones that may have left a copy behind.
import { appendFileSync, writeFileSync } from 'node:fs';
import { lmtpDeliverOnce, rawMessage } from '../test/support/lmtp.js';
import { LOAD_DOMAIN, type LoadLine, type LoadMessage } from '../test/support/load-record.js';

interface Target {
  store: string;
  host: string;
  users: string[];
}

function arg(name: string, fallback?: string): string {
  const i = process.argv.indexOf(`--${name}`);
  const value = i >= 0 ? process.argv[i + 1] : fallback;
  if (value === undefined) throw new Error(`--${name} is required`);
  return value;
}

const targets = JSON.parse(arg('targets')) as Target[];
const rate = Number(arg('rate', '25'));
const out = arg('out');
// deliveries at once per store, as an MTA limits them per destination: a store that refuses mail holds up its own
// queue only (one global limit let a dead store's retries stop the load to every other store)
const perStore = Number(arg('concurrency', '4'));
const drainMs = Number(arg('drain', '60000'));
const port = Number(arg('port', '2003'));
const prefix = arg('prefix', `load-${process.pid}`);
writeFileSync(out, '');

interface Queued {
  message: LoadMessage;
  host: string;
  raw: string;
  accepted: number;
}

let stopping = false;
let next = 0;
/** Accepted and neither acknowledged nor rejected yet: queued or being delivered. */
const inFlight = new Map<string, LoadMessage>();
const queues = new Map<string, Queued[]>(targets.map((t) => [t.store, []]));
const active = new Map<string, number>(targets.map((t) => [t.store, 0]));
const stats = { sent: 0, acked: 0, retries: 0, rejected: 0, longestMs: 0 };
const record = (line: LoadLine) => appendFileSync(out, `${JSON.stringify(line)}\n`);

/** Takes message `seq` into its store's queue, as an MTA accepts a message before it delivers it. */
function accept(seq: number): void {
  const target = targets[seq % targets.length]!;
  const user = target.users[Math.floor(seq / targets.length) % target.users.length]!;
  const id = `${prefix}-${seq}`;
  const message: LoadMessage = { id, store: target.store, user, attempts: 0, cutAfterData: 0 };
  // fixed once: a retry sends the very same bytes, as an MTA's queue does
  const raw = rawMessage(
    { From: 'load@example.org', To: `${user}@example.org`, Subject: id, 'Message-ID': `<${id}@${LOAD_DOMAIN}>`, Date: new Date().toUTCString(), 'MIME-Version': '1.0', 'Content-Type': 'text/plain; charset=utf-8' },
    `load message ${id} for ${user} on ${target.store}\n`,
  );
  inFlight.set(id, message);
  stats.sent++;
  queues.get(target.store)!.push({ message, host: target.host, raw, accepted: performance.now() });
  pump(target.store);
}

function pump(store: string): void {
  const queue = queues.get(store)!;
  while (active.get(store)! < perStore && queue.length) {
    const q = queue.shift()!;
    active.set(store, active.get(store)! + 1);
    void deliver(q).finally(() => {
      active.set(store, active.get(store)! - 1);
      pump(store);
    });
  }
}

async function deliver({ message, host, raw, accepted }: Queued): Promise<void> {
  try {
    for (;;) {
      message.attempts++;
      const began = performance.now();
      const at = new Date().toISOString();
      const result = await lmtpDeliverOnce(host, port, { from: 'load@example.org', to: `${message.user}@example.org`, raw });
      if (result.cutAfterData) {
        message.cutAfterData++;
        // a copy may be left behind: the record says when, where and why, so that a duplicate can be explained from it
        (message.cuts ??= []).push({ at, ms: Math.round(performance.now() - began), host, reason: result.reason });
      }
      if (result.outcome === 'ok') {
        stats.acked++;
        stats.longestMs = Math.max(stats.longestMs, Math.round(performance.now() - accepted));
        record({ type: 'ack', ...message, at: new Date().toISOString() });
        return;
      }
      if (result.outcome === 'rejected') {
        stats.rejected++;
        record({ type: 'rejected', ...message, reason: result.reason });
        return;
      }
      stats.retries++;
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    inFlight.delete(message.id);
  }
}

// as many accepted as the rate asks for by now: a tick that comes late (a busy host) does not lower the rate
const begun = performance.now();
const timer = setInterval(() => {
  const due = Math.floor(((performance.now() - begun) / 1000) * rate);
  while (!stopping && next < due) accept(next++);
}, Math.min(20, 1000 / rate));

// on SIGTERM: no new message; the queued and the ones being delivered finish (up to --drain), then the summary
process.on('SIGTERM', () => {
  stopping = true;
  clearInterval(timer);
  const deadline = Date.now() + drainMs;
  const wait = setInterval(() => {
    if (inFlight.size === 0 || Date.now() > deadline) {
      clearInterval(wait);
      const summary = { ...stats, inFlight: inFlight.size };
      record({ type: 'summary', prefix, ...summary, inFlightMessages: [...inFlight.values()] });
      process.stdout.write(`${JSON.stringify(summary)}\n`);
      process.exit(0);
    }
  }, 50);
});
