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
const concurrency = Number(arg('concurrency', '16'));
const drainMs = Number(arg('drain', '60000'));
const port = Number(arg('port', '2003'));
const prefix = arg('prefix', `load-${process.pid}`);
writeFileSync(out, '');

let stopping = false;
let next = 0;
const inFlight = new Map<string, LoadMessage>();
const stats = { sent: 0, acked: 0, retries: 0, rejected: 0, longestMs: 0 };
const record = (line: LoadLine) => appendFileSync(out, `${JSON.stringify(line)}\n`);

async function deliver(seq: number): Promise<void> {
  const target = targets[seq % targets.length]!;
  const user = target.users[Math.floor(seq / targets.length) % target.users.length]!;
  const id = `${prefix}-${seq}`;
  const message: LoadMessage = { id, store: target.store, user, attempts: 0, cutAfterData: 0 };
  // fixed once: a retry sends the very same bytes, as an MTA's queue does
  const raw = rawMessage(
    { From: 'load@example.org', To: `${user}@example.org`, Subject: id, 'Message-ID': `<${id}@${LOAD_DOMAIN}>`, Date: new Date().toUTCString(), 'MIME-Version': '1.0', 'Content-Type': 'text/plain; charset=utf-8' },
    `load message ${id} for ${user} on ${target.store}\n`,
  );
  const started = performance.now();
  inFlight.set(id, message);
  stats.sent++;
  try {
    for (;;) {
      message.attempts++;
      const result = await lmtpDeliverOnce(target.host, port, { from: 'load@example.org', to: `${user}@example.org`, raw });
      if (result.cutAfterData) message.cutAfterData++;
      if (result.outcome === 'ok') {
        stats.acked++;
        stats.longestMs = Math.max(stats.longestMs, Math.round(performance.now() - started));
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
    inFlight.delete(id);
  }
}

// as many started as the rate asks for by now: a tick that comes late (a busy host) does not lower the rate
const begun = performance.now();
const timer = setInterval(() => {
  const due = Math.floor(((performance.now() - begun) / 1000) * rate);
  while (!stopping && next < due && inFlight.size < concurrency) void deliver(next++);
}, Math.min(20, 1000 / rate));

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
