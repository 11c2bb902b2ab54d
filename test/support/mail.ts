// Real mail in and out: LMTP delivery with nodemailer (as an MTA hands mail to Cyrus) and IMAP reads with imapflow.
import nodemailer from 'nodemailer';
import { ImapFlow } from 'imapflow';

export interface Delivered {
  user: string;
  subject: string;
}

/** Delivers `count` messages over one LMTP connection; every one must get 250. */
export async function deliver(host: string, port: number, messages: readonly Delivered[]): Promise<void> {
  const transport = nodemailer.createTransport({ host, port, lmtp: true, secure: false, ignoreTLS: true, pool: false } as never);
  try {
    for (const m of messages) {
      const info = await transport.sendMail({
        from: 'sender@example.org',
        to: `${m.user}@example.org`,
        subject: m.subject,
        text: `body of ${m.subject}\n`,
      });
      if (info.rejected.length) throw new Error(`LMTP rejected ${m.user}: ${String(info.response)}`);
    }
  } finally {
    transport.close();
  }
}

/** An IMAP client for USER at host:port, plain text (tests run without TLS). Test auth accepts any password. */
export function imapClient(host: string, user: string, pass = 'x', port = 1143): ImapFlow {
  return new ImapFlow({ host, port, secure: false, auth: { user, pass }, logger: false, disableAutoIdle: true, doSTARTTLS: false } as never);
}

/** Subjects of every message in the user's INBOX, read over IMAP (any password: test auth). */
export async function inboxSubjects(host: string, port: number, user: string): Promise<string[]> {
  const client = imapClient(host, user, 'x', port);
  await client.connect();
  try {
    const box = await client.mailboxOpen('INBOX', { readOnly: true });
    if (box.exists === 0) return [];
    const subjects: string[] = [];
    for await (const msg of client.fetch('1:*', { envelope: true })) subjects.push(msg.envelope?.subject ?? '');
    return subjects.sort();
  } finally {
    await client.logout().catch(() => undefined);
  }
}

/** Message counts per user, or -1 where the mailbox does not exist (yet). */
export async function inboxCounts(host: string, port: number, users: readonly string[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const user of users) {
    const client = imapClient(host, user, 'x', port);
    await client.connect();
    try {
      const status = await client.status('INBOX', { messages: true }).catch(() => undefined);
      out[user] = status ? (status.messages ?? -1) : -1;
    } finally {
      await client.logout().catch(() => undefined);
    }
  }
  return out;
}

/** Subjects of every message in each user's INBOX on one host, in one IMAP session per user; [] where it is missing. */
export async function mailboxSubjects(host: string, port: number, users: readonly string[]): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const user of users) {
    out[user] = await inboxSubjects(host, port, user).catch((err: Error & { responseText?: string }) => {
      if (/does not exist|Mailbox does not exist/i.test(err.responseText ?? err.message)) return [];
      throw err;
    });
  }
  return out;
}

/** Delivers many messages over a few pooled LMTP connections (benchmarks: a backlog of 1,000 messages in seconds). */
/** A body of about `bytes` bytes in 76-character lines (mail of a realistic size for throughput figures). */
export function filler(bytes: number): string {
  const line = `${'x'.repeat(75)}\n`;
  return line.repeat(Math.max(0, Math.ceil(bytes / line.length)));
}

export async function deliverMany(host: string, port: number, messages: readonly Delivered[], connections = 4, bodyBytes = 0): Promise<void> {
  const transport = nodemailer.createTransport({ host, port, lmtp: true, secure: false, ignoreTLS: true, pool: true, maxConnections: connections, maxMessages: Infinity } as never);
  try {
    await Promise.all(
      messages.map(async (m) => {
        const info = await transport.sendMail({ from: 'sender@example.org', to: `${m.user}@example.org`, subject: m.subject, text: `body of ${m.subject}\n${bodyBytes ? filler(bodyBytes) : ''}` });
        if (info.rejected.length) throw new Error(`LMTP rejected ${m.user}: ${String(info.response)}`);
      }),
    );
  } finally {
    transport.close();
  }
}

/** Creates USER's FOLDER if missing and appends one message to it over IMAP (a user filing mail). */
export async function appendToFolder(host: string, port: number, user: string, folder: string, subject: string): Promise<void> {
  const client = imapClient(host, user, 'x', port);
  await client.connect();
  try {
    await client.mailboxCreate(folder).catch((err: Error & { responseText?: string }) => {
      if (!/exists/i.test(err.responseText ?? err.message)) throw err;
    });
    const raw = `From: sender@example.org\r\nTo: ${user}@example.org\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, '-')}@example.org>\r\n\r\nfiled\r\n`;
    await client.append(folder, raw, ['\\Seen']);
  } finally {
    await client.logout().catch(() => undefined);
  }
}

/** Subjects in USER's FOLDER, [] when it does not exist. */
export async function folderSubjects(host: string, port: number, user: string, folder: string): Promise<string[]> {
  const client = imapClient(host, user, 'x', port);
  await client.connect();
  try {
    const box = await client.mailboxOpen(folder, { readOnly: true }).catch(() => undefined);
    if (!box || box.exists === 0) return [];
    const subjects: string[] = [];
    for await (const msg of client.fetch('1:*', { envelope: true })) subjects.push(msg.envelope?.subject ?? '');
    return subjects.sort();
  } finally {
    await client.logout().catch(() => undefined);
  }
}

/** Deletes and expunges the messages with this subject from USER's FOLDER (INBOX unless told); returns how many. */
export async function expungeSubject(host: string, port: number, user: string, subject: string, folder = 'INBOX'): Promise<number> {
  const client = imapClient(host, user, 'x', port);
  await client.connect();
  try {
    await client.mailboxOpen(folder);
    const uids = (await client.search({ subject }, { uid: true })) || [];
    if (uids.length) await client.messageDelete(uids, { uid: true });
    return uids.length;
  } finally {
    await client.logout().catch(() => undefined);
  }
}

/** Deletes USER's FOLDER (with delayed delete, Cyrus keeps it under DELETED until cleanup). */
export async function deleteFolder(host: string, port: number, user: string, folder: string): Promise<void> {
  const client = imapClient(host, user, 'x', port);
  await client.connect();
  try {
    await client.mailboxDelete(folder);
  } finally {
    await client.logout().catch(() => undefined);
  }
}
