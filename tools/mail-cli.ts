// A mail client to run inside a namespace (`ip netns exec NS node --import tsx tools/mail-cli.ts …`), so a test sees
// what a user sees. One JSON request on argv, one JSON answer on stdout.
//   deliver '[{"host":"10.231.3.1","user":"amy","subject":"hi"}]'      → {"ok":true}
//   subjects '[{"host":"10.231.3.1","user":"amy"}]'                    → [["hi"]]
//   mailboxes '[{"host":"10.231.3.1","users":["amy","bo"]}]'           → [{"amy":["hi"],"bo":[]}]
//   bulk '[{"host":"10.231.3.1","users":["amy","bo"],"count":1000,"subject":"b1","bytes":4000}]' → {"ok":true} (pooled)
//   file '[{"host":"10.231.3.1","user":"amy","folder":"Projects","subject":"plan"}]'  → {"ok":true} (IMAP APPEND)
//   folder '[{"host":"10.231.3.1","user":"amy","folder":"Projects"}]'                 → [["plan"]]
//   expunge '[{"host":"10.231.3.1","user":"amy","subject":"old"}]'                     → [1] (from INBOX, or "folder")
//   rmfolder '[{"host":"10.231.3.1","user":"amy","folder":"Projects"}]'               → {"ok":true} (IMAP DELETE)
import { appendToFolder, deleteFolder, deliver, deliverMany, expungeSubject, folderSubjects, inboxSubjects, mailboxSubjects } from '../test/support/mail.js';

const [command, json] = process.argv.slice(2);
const requests = JSON.parse(json ?? '[]') as { host: string; user: string; users?: string[]; subject?: string; count?: number; folder?: string; bytes?: number }[];
if (command === 'deliver') {
  for (const r of requests) await deliver(r.host, 2003, [{ user: r.user, subject: r.subject ?? 'test' }]);
  console.log(JSON.stringify({ ok: true }));
} else if (command === 'subjects') {
  const out: string[][] = [];
  for (const r of requests) out.push(await inboxSubjects(r.host, 1143, r.user));
  console.log(JSON.stringify(out));
} else if (command === 'bulk') {
  for (const r of requests) {
    const users = r.users ?? [r.user];
    await deliverMany(r.host, 2003, Array.from({ length: r.count ?? 1 }, (_, i) => ({ user: users[i % users.length]!, subject: `${r.subject ?? 'bulk'} ${i}` })), 4, r.bytes ?? 0);
  }
  console.log(JSON.stringify({ ok: true }));
} else if (command === 'mailboxes') {
  const out: Record<string, string[]>[] = [];
  for (const r of requests) out.push(await mailboxSubjects(r.host, 1143, r.users ?? []));
  console.log(JSON.stringify(out));
} else if (command === 'file') {
  for (const r of requests) await appendToFolder(r.host, 1143, r.user, r.folder ?? 'Filed', r.subject ?? 'test');
  console.log(JSON.stringify({ ok: true }));
} else if (command === 'folder') {
  const out: string[][] = [];
  for (const r of requests) out.push(await folderSubjects(r.host, 1143, r.user, r.folder ?? 'Filed'));
  console.log(JSON.stringify(out));
} else if (command === 'expunge') {
  const out: number[] = [];
  for (const r of requests) out.push(await expungeSubject(r.host, 1143, r.user, r.subject ?? '', r.folder ?? 'INBOX'));
  console.log(JSON.stringify(out));
} else if (command === 'rmfolder') {
  for (const r of requests) await deleteFolder(r.host, 1143, r.user, r.folder ?? 'Filed');
  console.log(JSON.stringify({ ok: true }));
} else {
  console.error('usage: mail-cli.ts deliver|subjects|mailboxes|bulk|file|folder|expunge|rmfolder JSON');
  process.exit(2);
}
