// Master and replica compared as a user sees them over IMAP: every folder of every user either side holds (users
// found by the Cyrus admin, plus any the test names), each message by Message-ID, flags and a hash of its bytes. A
// comparison of INBOX subjects would miss a folder that never replicated, a flag change, or a message that arrived
// damaged. Replication is asynchronous: `compareUntilEqual` reads again until both sides agree or time runs out.
import { createHash } from 'node:crypto';
import { ImapFlow } from 'imapflow';

export interface MessageFacts {
  messageId: string;
  /** Sorted; \Recent left out (it belongs to a session, not to the message). */
  flags: string[];
  /** sha256 of the message as stored, headers and body. */
  sha256: string;
  /**
   * bodySha256 of the message as stored: what its sender can know in advance (LMTP adds a Received header, so
   * `sha256` never matches what a client sent). The soak's checker compares it with the hash its clients recorded.
   */
  bodySha256?: string;
}

/** sha256 of a message's body (after the first blank line), line ends made LF: the part no server rewrites. */
export function bodySha256(message: string | Buffer): string {
  const text = (typeof message === 'string' ? message : message.toString('utf8')).replace(/\r\n/g, '\n');
  const blank = text.indexOf('\n\n');
  return createHash('sha256').update(blank < 0 ? '' : text.slice(blank + 2)).digest('hex');
}

/** user → folder (as the user sees it: INBOX, INBOX/Projects) → messages, sorted. */
export type Snapshot = Record<string, Record<string, MessageFacts[]>>;

export interface ImapAdmin {
  user: string;
  pass: string;
}

export const TEST_ADMIN: ImapAdmin = { user: 'admin', pass: 'x' }; // --auth test: any password

export interface CompareOptions {
  /** Users that must exist on both sides (the admin's listing finds every user either side has). */
  users?: readonly string[];
  admin?: ImapAdmin;
  port?: number;
}

function connect(host: string, port: number, admin: ImapAdmin, asUser?: string): ImapFlow {
  // as the user through the admin's credentials (SASL PLAIN with an authorization id): works with sasldb too
  const auth = { user: admin.user, pass: admin.pass, ...(asUser ? { authzid: asUser } : {}) };
  return new ImapFlow({ host, port, secure: false, doSTARTTLS: false, logger: false, disableAutoIdle: true, auth } as never);
}

async function session<T>(client: ImapFlow, work: (c: ImapFlow) => Promise<T>): Promise<T> {
  await client.connect();
  try {
    return await work(client);
  } finally {
    await Promise.race([client.logout().catch(() => undefined), new Promise((r) => setTimeout(r, 2000))]);
    client.close();
  }
}

/** Users with a mailbox on the host, as its admin lists them (user/NAME…; delayed-deleted folders left out). */
export async function listUsers(host: string, port: number, admin: ImapAdmin): Promise<string[]> {
  return session(connect(host, port, admin), async (c) => {
    const users = new Set<string>();
    for (const box of await c.list()) {
      const parts = box.path.split(box.delimiter || '/');
      if (parts[0] === 'user' && parts[1]) users.add(parts[1]);
    }
    return [...users].sort();
  });
}

const byFacts = (a: MessageFacts, b: MessageFacts) => (a.messageId + a.sha256 + a.flags.join()).localeCompare(b.messageId + b.sha256 + b.flags.join());

/** Every folder of one user on one host. */
export async function snapshotUser(host: string, port: number, admin: ImapAdmin, user: string): Promise<Record<string, MessageFacts[]>> {
  return session(connect(host, port, admin, user), async (c) => {
    const out: Record<string, MessageFacts[]> = {};
    for (const box of await c.list()) {
      if (box.flags?.has('\\Noselect') || box.flags?.has('\\NonExistent')) continue;
      const opened = await c.mailboxOpen(box.path, { readOnly: true });
      const messages: MessageFacts[] = [];
      if (opened.exists > 0) {
        for await (const m of c.fetch('1:*', { envelope: true, flags: true, source: true })) {
          messages.push({
            messageId: m.envelope?.messageId ?? '(no Message-ID)',
            flags: [...(m.flags ?? new Set<string>())].filter((f) => f !== '\\Recent').sort(),
            sha256: createHash('sha256').update(m.source ?? Buffer.alloc(0)).digest('hex'),
            bodySha256: bodySha256(m.source ?? Buffer.alloc(0)),
          });
        }
      }
      if (messages.length !== opened.exists) throw new Error(`${host} ${user} ${box.path}: fetched ${messages.length} of ${opened.exists} messages`);
      out[box.path] = messages.sort(byFacts);
    }
    return out;
  });
}

export async function snapshot(host: string, users: readonly string[], options: CompareOptions = {}): Promise<Snapshot> {
  const port = options.port ?? 1143;
  const admin = options.admin ?? TEST_ADMIN;
  const out: Snapshot = {};
  for (const user of users) out[user] = await snapshotUser(host, port, admin, user);
  return out;
}

const facts = (m: MessageFacts) => `${m.messageId} [${m.flags.join(' ')}] ${m.sha256.slice(0, 12)}`;

/** Every difference between two snapshots, one line each ([] when they are the same). */
export function diffSnapshots(a: Snapshot, b: Snapshot, names: [string, string] = ['master', 'replica']): string[] {
  const out: string[] = [];
  for (const user of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
    const fa = a[user];
    const fb = b[user];
    if (!fa || !fb) {
      out.push(`user ${user} only on the ${fa ? names[0] : names[1]}`);
      continue;
    }
    for (const folder of [...new Set([...Object.keys(fa), ...Object.keys(fb)])].sort()) {
      const ma = fa[folder];
      const mb = fb[folder];
      if (!ma || !mb) {
        out.push(`${user} ${folder}: folder only on the ${ma ? names[0] : names[1]}`);
        continue;
      }
      const left = ma.map(facts);
      const right = mb.map(facts);
      const onlyA = left.filter((x) => !right.includes(x));
      const onlyB = right.filter((x) => !left.includes(x));
      if (onlyA.length) out.push(`${user} ${folder}: only on the ${names[0]}: ${onlyA.join(', ')}`);
      if (onlyB.length) out.push(`${user} ${folder}: only on the ${names[1]}: ${onlyB.join(', ')}`);
      // the same messages, but not as many copies of each
      if (!onlyA.length && !onlyB.length && JSON.stringify(left) !== JSON.stringify(right)) out.push(`${user} ${folder}: copies differ: ${left.length} on the ${names[0]}, ${right.length} on the ${names[1]}`);
    }
  }
  return out;
}

export const messageCount = (s: Snapshot): number => Object.values(s).reduce((n, folders) => n + Object.values(folders).reduce((k, m) => k + m.length, 0), 0);

export interface PairResult {
  name: string;
  master: Snapshot;
  /** The replica's snapshot as last read (the soak's checker judges both sides). */
  replica: Snapshot;
  diffs: string[];
  messages: number;
}

/**
 * Reads each pair (master and replica host) until both hold the same users, folders and messages, or until
 * `timeoutMs`; then returns the master's snapshot and what still differed (nothing, for a pair that agreed).
 */
export async function compareUntilEqual(pairs: readonly { name: string; master: string; replica: string }[], timeoutMs: number, options: CompareOptions = {}): Promise<PairResult[]> {
  const port = options.port ?? 1143;
  const admin = options.admin ?? TEST_ADMIN;
  const deadline = Date.now() + timeoutMs;
  const one = async (p: { name: string; master: string; replica: string }): Promise<PairResult> => {
    for (;;) {
      let diffs: string[];
      let master: Snapshot = {};
      let replica: Snapshot = {};
      try {
        const mu = await listUsers(p.master, port, admin);
        const ru = await listUsers(p.replica, port, admin);
        // a user missing on one side is a difference, not something to log in as (a master would autocreate it)
        const missing = (options.users ?? []).filter((u) => !mu.includes(u) && !ru.includes(u));
        master = await snapshot(p.master, mu, options);
        replica = await snapshot(p.replica, ru, options);
        diffs = diffSnapshots(master, replica);
        if (missing.length) diffs.push(`users on neither side: ${missing.join(', ')}`);
      } catch (err) {
        diffs = [`reading failed: ${(err as Error).message}`];
      }
      if (diffs.length === 0 || Date.now() > deadline) return { name: p.name, master, replica, diffs, messages: messageCount(master) };
      await new Promise((r) => setTimeout(r, 500));
    }
  };
  return Promise.all(pairs.map(one));
}
