// Pure: parsing the syslog lines Cyrus sends to /dev/log. With `syslog_prefix: slot-NAME` a line looks like
//   <22>Nov 29 19:18:15 slot-s01-m1/lmtp[13634]: Delivered: <…> to mailbox: user.alice

export interface SyslogLine {
  severity: number;
  slot: string | undefined;
  program: string;
  pid: number | undefined;
  message: string;
}

const LINE_RE = /^<(\d{1,3})>(?:[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d )?([^:[\s]+)(?:\[(\d+)\])?: ?(.*)$/s;

export function parseSyslog(raw: string): SyslogLine | undefined {
  const match = LINE_RE.exec(raw);
  if (!match) return undefined;
  const tag = match[2]!;
  const slash = tag.indexOf('/');
  const prefix = slash >= 0 ? tag.slice(0, slash) : tag;
  const slot = prefix.startsWith('slot-') ? prefix.slice(5) : undefined;
  return {
    severity: Number(match[1]) & 7,
    slot,
    program: slash >= 0 ? tag.slice(slash + 1) : tag,
    pid: match[3] ? Number(match[3]) : undefined,
    message: match[4]!.trimEnd(),
  };
}

const SEVERITY = ['emerg', 'alert', 'crit', 'err', 'warning', 'notice', 'info', 'debug'];

/** One line of a slot's log file: ISO time, severity, program[pid], message. */
export function formatLogLine(line: SyslogLine, at: Date): string {
  return `${at.toISOString()} ${SEVERITY[line.severity]} ${line.program}${line.pid ? `[${line.pid}]` : ''}: ${line.message}`;
}

/** Lines that become slot events: replication and I/O errors, fatal errors, a sync log that could not be written. */
export function isNotable(message: string): boolean {
  return /SYNCERROR|IOERROR|Fatal error|DBERROR|bailing out|IMAP_MAILBOX_MOVED|sync_log\(\): |write\(\) to \S+ failed/.test(message);
}

const SERIOUS = new Set(['emerg', 'alert', 'crit', 'err']);

/**
 * Pure: what a cyrmaster that exited said, from its slot's log lines (as formatLogLine wrote them) since it was
 * started: its errors (the line before "exiting" says why), else its last line; at most `max`, as `program: message`.
 */
export function exitWords(lines: readonly string[], max = 2): string[] {
  const parsed = lines.map((l) => /^\S+ (\w+) ([^\s[:]+)(?:\[\d+\])?: (.*)$/.exec(l)).filter((m): m is RegExpExecArray => m !== null);
  const serious = parsed.filter((m) => SERIOUS.has(m[1]!));
  const chosen = serious.length ? serious : parsed.filter((m) => m[3] !== 'exiting').slice(-1);
  return [...new Set(chosen.map((m) => `${m[2]}: ${m[3]}`))].slice(-max);
}
