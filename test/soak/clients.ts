// The soak's mail clients, run in the client namespace of a namespace cluster: LMTP deliveries and IMAP sessions
// (APPEND, folder create and delete, flags set and cleared, EXPUNGE) against every store's service IP, each operation
// written to the history (history.ts) when it is invoked and when it is answered. Nothing is retried: a retry is a new
// operation of its own, so every copy the checker finds is explained by exactly the attempts that may have stored it.
//   node --import tsx test/soak/clients.ts --targets '[{"store":"n01","host":"10.231.3.1","users":["n01a"]}]' \
//     --out history-clients.jsonl --name c1 --seed 7 [--lmtp-rate 6] [--imap-rate 4] [--setup]
// The outcome is 'fail' only when the operation certainly did not happen (nothing was sent, or the server said NO or
// 4xx/5xx), 'unknown' when it may have (a timeout or a broken connection after the request went out). SIGTERM: no
// new operation, the ones running end (each has a deadline), then exit 0.
import { randomBytes } from 'node:crypto';
import { ImapFlow } from 'imapflow';
import { lmtpDeliverOnce, rawMessage } from '../support/lmtp.js';
import { bodyHash, HistoryWriter, type OpKind, type Outcome } from './history.js';
import { Rng } from './schedule.js';

export const SOAK_DOMAIN = 'soak.slotctl.test';
/** Folders the IMAP clients create, delete and file into (besides INBOX). */
export const SOAK_FOLDERS = ['Archive', 'Later', 'Work'] as const;
const FLAGS = ['\\Seen', '\\Flagged', '$Soak'] as const;

interface Target {
  store: string;
  host: string;
  users: string[];
}

/** What a client believes may exist, only to choose targets that make sense (the checker decides what is right). */
interface Known {
  messages: { messageId: string; folder: string }[];
  /** Folders that may exist (created, or a create that may have happened). */
  folders: Set<string>;
}

export interface ClientSettings {
  targets: Target[];
  out: string;
  name: string;
  seed: number;
  lmtpRate: number;
  imapRate: number;
  /** ms an operation may take before it is abandoned as 'unknown'. */
  opTimeoutMs: number;
}

/** The answer of an operation, and why. */
type Result = [Outcome, string];

class Deadline extends Error {
  override readonly name = 'Deadline';
}

function withDeadline<T>(ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Deadline(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

/** imapflow marks the server's tagged NO and BAD answers; anything else (closed, timed out) is not an answer. */
const refused = (err: unknown) => ['NO', 'BAD'].includes((err as { responseStatus?: string }).responseStatus ?? '');
const why = (err: unknown) => (err as { responseText?: string }).responseText ?? (err as Error).message;

export class SoakClients {
  private readonly history: HistoryWriter;
  private readonly rng: Rng;
  private readonly known = new Map<string, Known>();
  private readonly busyUsers = new Set<string>();
  private readonly lmtpInFlight = new Map<string, number>();
  private readonly running = new Set<Promise<void>>();
  private seq = 0;
  private stopping = false;
  private timers: NodeJS.Timeout[] = [];

  constructor(private readonly s: ClientSettings) {
    this.history = new HistoryWriter(s.out, s.name);
    this.rng = new Rng(s.seed);
  }

  private knownOf(store: string, user: string): Known {
    const k = `${store}/${user}`;
    let known = this.known.get(k);
    if (!known) this.known.set(k, (known = { messages: [], folders: new Set() }));
    return known;
  }

  private newMessage(user: string, folder: string): { messageId: string; raw: string; hash: string } {
    const id = `${this.s.name}-${++this.seq}`;
    const messageId = `<${id}@${SOAK_DOMAIN}>`;
    const raw = rawMessage(
      { From: `soak@${SOAK_DOMAIN}`, To: `${user}@example.org`, Subject: `soak ${id} to ${folder}`, 'Message-ID': messageId, Date: new Date().toUTCString(), 'MIME-Version': '1.0', 'Content-Type': 'text/plain; charset=utf-8' },
      `soak message ${id} for ${user}\n${randomBytes(24).toString('hex')}\n`,
    );
    return { messageId, raw, hash: bodyHash(raw) };
  }

  /** Records the operation around `work`, whatever happens; an exception is an 'unknown' answer. */
  private track(op: Parameters<HistoryWriter['invoke']>[0], work: () => Promise<Result>): void {
    const id = this.history.invoke(op);
    const p = work()
      .catch((err: unknown): Result => ['unknown', `client error: ${(err as Error).message}`])
      .then(([outcome, detail]) => this.history.complete(id, outcome, detail.slice(0, 300)));
    this.running.add(p);
    void p.finally(() => this.running.delete(p));
  }

  private deliver(): void {
    const t = this.rng.pick(this.s.targets);
    if ((this.lmtpInFlight.get(t.store) ?? 0) >= 2) return; // as an MTA limits deliveries per destination
    const user = this.rng.pick(t.users);
    const m = this.newMessage(user, 'INBOX');
    this.knownOf(t.store, user).messages.push({ messageId: m.messageId, folder: 'INBOX' });
    this.lmtpInFlight.set(t.store, (this.lmtpInFlight.get(t.store) ?? 0) + 1);
    this.track({ kind: 'deliver', store: t.store, user, folder: 'INBOX', messageId: m.messageId, bodyHash: m.hash }, async () => {
      try {
        const r = await lmtpDeliverOnce(t.host, 2003, { from: `soak@${SOAK_DOMAIN}`, to: `${user}@example.org`, raw: m.raw }, { connectMs: 3000, replyMs: this.s.opTimeoutMs });
        if (r.outcome === 'ok') return ['ok', r.reason];
        // refused before the data went out, or answered 4xx/5xx after it: not stored; cut off after the data: maybe
        return [r.cutAfterData ? 'unknown' : 'fail', r.reason];
      } finally {
        this.lmtpInFlight.set(t.store, this.lmtpInFlight.get(t.store)! - 1);
      }
    });
  }

  private imap(): void {
    const t = this.rng.pick(this.s.targets);
    const user = this.rng.pick(t.users);
    const key = `${t.store}/${user}`;
    if (this.busyUsers.has(key)) return; // one session per user at a time: the history stays readable
    const known = this.knownOf(t.store, user);
    const kind = this.rng.weighted<OpKind>([['append', 4], ['set-flags', 2], ['clear-flags', 2], ['expunge', 1], ['create-folder', 1], ['delete-folder', 0.5]]);
    // mostly operations that can succeed: create what is missing, delete and file into what may be there
    const have = SOAK_FOLDERS.filter((f) => known.folders.has(f));
    const missing = SOAK_FOLDERS.filter((f) => !known.folders.has(f));
    const creating = kind === 'create-folder' || (kind === 'delete-folder' && !have.length);
    const folder = this.rng.float() < 0.1 ? this.rng.pick(SOAK_FOLDERS) : creating ? this.rng.pick(missing.length ? missing : SOAK_FOLDERS) : this.rng.pick(have.length ? have : SOAK_FOLDERS);
    const base = { store: t.store, user };
    this.busyUsers.add(key);
    const release = (r: Result): Result => {
      this.busyUsers.delete(key);
      return r;
    };
    const run = (op: Parameters<HistoryWriter['invoke']>[0], work: (c: ImapFlow, sent: () => void) => Promise<Result>) =>
      this.track(op, () => this.session(t.host, user, work).then(release, (err: unknown) => release(['unknown', (err as Error).message])));
    if (kind === 'append') {
      const into = this.rng.float() < 0.4 || !have.length ? 'INBOX' : folder;
      const m = this.newMessage(user, into);
      const flags = this.rng.float() < 0.3 ? [this.rng.pick(FLAGS)] : [];
      known.messages.push({ messageId: m.messageId, folder: into });
      return run({ kind, ...base, folder: into, messageId: m.messageId, bodyHash: m.hash, flags }, async (c, sent) => {
        sent();
        const r = await c.append(into, m.raw, flags);
        return r ? ['ok', `APPEND uid ${(r as { uid?: number }).uid ?? '?'}`] : ['fail', 'APPEND answered NO'];
      });
    }
    if (kind === 'create-folder' || kind === 'delete-folder') {
      const op = creating ? 'create-folder' : 'delete-folder';
      if (op === 'create-folder') known.folders.add(folder);
      return run({ kind: op, ...base, folder }, async (c, sent) => {
        sent();
        if (op === 'create-folder') await c.mailboxCreate(folder);
        else {
          await c.mailboxDelete(folder);
          known.folders.delete(folder);
          known.messages = known.messages.filter((m) => m.folder !== folder);
        }
        return ['ok', `${op === 'create-folder' ? 'CREATE' : 'DELETE'} ${folder}`];
      });
    }
    if (!known.messages.length) return void this.busyUsers.delete(key);
    const target = this.rng.pick(known.messages);
    const flags = kind === 'expunge' ? [] : [this.rng.pick(FLAGS)];
    run({ kind, ...base, folder: target.folder, messageId: target.messageId, ...(flags.length ? { flags } : {}) }, async (c, sent) => {
      await c.mailboxOpen(target.folder);
      const uids = (await c.search({ header: { 'message-id': target.messageId } }, { uid: true })) || [];
      if (!uids.length) return ['fail', `${target.messageId} not found in ${target.folder}`];
      sent();
      const done = kind === 'set-flags' ? await c.messageFlagsAdd(uids, flags, { uid: true }) : kind === 'clear-flags' ? await c.messageFlagsRemove(uids, flags, { uid: true }) : await c.messageDelete(uids, { uid: true });
      if (done) {
        if (kind === 'expunge') known.messages = known.messages.filter((m) => m !== target);
        return ['ok', `uid ${uids.join(',')}`];
      }
      // imapflow answers false for a NO and for a dropped connection alike: a session still usable heard a NO
      return c.usable ? ['fail', 'answered NO'] : ['unknown', 'connection lost after the request'];
    });
  }

  /** One IMAP session for one operation: anything before `sent()` failing means the operation did not happen. */
  private async session(host: string, user: string, work: (c: ImapFlow, sent: () => void) => Promise<Result>): Promise<Result> {
    const client = new ImapFlow({ host, port: 1143, secure: false, doSTARTTLS: false, logger: false, disableAutoIdle: true, auth: { user, pass: 'x' }, connectionTimeout: 5000, greetingTimeout: 5000, socketTimeout: this.s.opTimeoutMs } as never);
    client.on('error', () => undefined); // reported through the command that failed
    let sent = false;
    try {
      return await withDeadline(this.s.opTimeoutMs, (async () => {
        await client.connect();
        return work(client, () => (sent = true));
      })());
    } catch (err) {
      if (!sent) return ['fail', `before the request: ${why(err)}`];
      return refused(err) ? ['fail', `answered ${(err as { responseStatus: string }).responseStatus}: ${why(err)}`] : ['unknown', why(err)];
    } finally {
      void withDeadline(2000, client.logout()).catch(() => undefined).finally(() => client.close());
    }
  }

  start(): void {
    const every = (rate: number, fn: () => void) => {
      if (rate > 0) this.timers.push(setInterval(() => this.stopping || fn(), 1000 / rate));
    };
    every(this.s.lmtpRate, () => this.deliver());
    every(this.s.imapRate, () => this.imap());
  }

  /** No new operation; resolves when every running one has been answered or abandoned. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const t of this.timers) clearInterval(t);
    while (this.running.size) await Promise.allSettled([...this.running]);
    this.history.close();
  }

  /** Before the run: one delivery per user creates its mailbox (recorded like any other, so nothing is foreign). */
  async setup(): Promise<void> {
    for (const t of this.s.targets) {
      for (const user of t.users) {
        const m = this.newMessage(user, 'INBOX');
        this.knownOf(t.store, user).messages.push({ messageId: m.messageId, folder: 'INBOX' });
        let result: Result = ['fail', ''];
        this.track({ kind: 'deliver', store: t.store, user, folder: 'INBOX', messageId: m.messageId, bodyHash: m.hash }, async () => {
          const r = await lmtpDeliverOnce(t.host, 2003, { from: `soak@${SOAK_DOMAIN}`, to: `${user}@example.org`, raw: m.raw }, { connectMs: 3000, replyMs: this.s.opTimeoutMs });
          result = [r.outcome === 'ok' ? 'ok' : r.cutAfterData ? 'unknown' : 'fail', r.reason];
          return result;
        });
        while (this.running.size) await Promise.allSettled([...this.running]);
        if (result[0] !== 'ok') throw new Error(`setup delivery to ${user} on ${t.store} (${t.host}) failed: ${result[1]}`);
      }
    }
  }
}

function arg(name: string, fallback?: string): string {
  const i = process.argv.indexOf(`--${name}`);
  const value = i >= 0 ? process.argv[i + 1] : fallback;
  if (value === undefined) throw new Error(`--${name} is required`);
  return value;
}

if (process.argv[1]?.endsWith('clients.ts')) {
  const clients = new SoakClients({
    targets: JSON.parse(arg('targets')) as Target[],
    out: arg('out'),
    name: arg('name', 'c1'),
    seed: Number(arg('seed', '1')),
    lmtpRate: Number(arg('lmtp-rate', '6')),
    imapRate: Number(arg('imap-rate', '4')),
    opTimeoutMs: Number(arg('op-timeout', '20000')),
  });
  if (process.argv.includes('--setup')) {
    await clients.setup();
    await clients.stop();
    process.stdout.write('setup done\n');
  } else {
    clients.start();
    process.stdout.write('clients started\n');
    process.once('SIGTERM', () => void clients.stop().then(() => process.exit(0)));
  }
}
