// A mail load as an MTA makes it: LMTP deliveries to stores' service IPs at a steady rate, each message retried
// (same Message-ID) after a temporary failure or a refused connection until it gets 250, and every 250 recorded.
// Runs until SIGTERM, then finishes the messages in flight (up to --drain) and prints a JSON summary.
//   node --import tsx tools/load-generator.ts --targets '[{"store":"n01","host":"10.231.3.1","users":["u1"]}]' \
//     --rate 25 --out acked.ndjson
import { appendFileSync, writeFileSync } from 'node:fs';
import nodemailer from 'nodemailer';

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
let inFlight = 0;
const stats = { sent: 0, acked: 0, retries: 0, rejected: 0, longestMs: 0 };

async function sendOnce(target: Target, user: string, id: string): Promise<'ok' | 'retry' | 'rejected'> {
  const transport = nodemailer.createTransport({ host: target.host, port, lmtp: true, secure: false, ignoreTLS: true, pool: false, connectionTimeout: 2000, greetingTimeout: 2000, socketTimeout: 5000 } as never);
  try {
    const info = await transport.sendMail({
      from: 'load@example.org',
      to: `${user}@example.org`,
      subject: id,
      messageId: `<${id}@load.slotctl.test>`,
      text: `load message ${id} for ${user} on ${target.store}\n`,
    });
    return info.accepted.length ? 'ok' : 'retry';
  } catch (err) {
    const code = (err as { responseCode?: number }).responseCode;
    return code !== undefined && code >= 500 ? 'rejected' : 'retry';
  } finally {
    transport.close();
  }
}

async function deliver(seq: number): Promise<void> {
  const target = targets[seq % targets.length]!;
  const user = target.users[Math.floor(seq / targets.length) % target.users.length]!;
  const id = `${prefix}-${seq}`;
  const started = performance.now();
  stats.sent++;
  for (let attempt = 1; ; attempt++) {
    const result = await sendOnce(target, user, id);
    if (result === 'ok') {
      stats.acked++;
      stats.longestMs = Math.max(stats.longestMs, Math.round(performance.now() - started));
      appendFileSync(out, `${JSON.stringify({ id, store: target.store, user, attempts: attempt, at: new Date().toISOString() })}\n`);
      return;
    }
    if (result === 'rejected') {
      stats.rejected++;
      return;
    }
    stats.retries++;
    await new Promise((r) => setTimeout(r, 100));
  }
}

const timer = setInterval(() => {
  if (stopping || inFlight >= concurrency) return;
  inFlight++;
  void deliver(next++).finally(() => inFlight--);
}, 1000 / rate);

process.on('SIGTERM', () => {
  stopping = true;
  clearInterval(timer);
  const deadline = Date.now() + drainMs;
  const wait = setInterval(() => {
    if (inFlight === 0 || Date.now() > deadline) {
      clearInterval(wait);
      process.stdout.write(`${JSON.stringify({ ...stats, inFlight })}\n`);
      process.exit(0);
    }
  }, 50);
});
