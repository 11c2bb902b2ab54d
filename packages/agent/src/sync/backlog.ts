// Pure: what a master's sync logs say the replica may lack. Lines look like `APPEND user.alice`,
// `MAILBOX user.bob`, `SUB bob user.bob`, `USER carol`; names may be quoted.

export interface BacklogSummary {
  files: number;
  bytes: number;
  mailboxes: number;
  /** Sorted, at most MAILBOX_NAMES_REPORTED. */
  mailboxNames: string[];
  oldestChangeAgeMs: number;
}

export const MAILBOX_NAMES_REPORTED = 200;

/** Splits a sync log line into words, honouring "quoted words" with \" and \\ escapes. */
export function splitLogLine(line: string): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < line.length) {
    while (line[i] === ' ') i++;
    if (i >= line.length) break;
    if (line[i] === '"') {
      let word = '';
      i++;
      while (i < line.length && line[i] !== '"') {
        if (line[i] === '\\' && i + 1 < line.length) i++;
        word += line[i++];
      }
      i++;
      words.push(word);
    } else {
      const end = line.indexOf(' ', i);
      words.push(line.slice(i, end < 0 ? line.length : end));
      i = end < 0 ? line.length : end;
    }
  }
  return words;
}

/** The mailbox (or whole user, as `user:NAME`) that one log line names, or undefined for lines that name none. */
export function mailboxOfLine(line: string): string | undefined {
  const [command, first, second] = splitLogLine(line.trim());
  switch (command) {
    case 'APPEND':
    case 'MAILBOX':
    case 'QUOTA':
    case 'ANNOTATION':
    case 'UNMAILBOX':
      return first;
    case 'SUB':
    case 'UNSUB':
      return second;
    case 'USER':
    case 'UNUSER':
    case 'META':
    case 'SEEN':
      return first === undefined ? undefined : `user:${first}`;
    default:
      return undefined;
  }
}

/** The order in which leftover files must be replayed: log-run first, then failed runs log-<PID>, then log. */
export function replayOrder(names: readonly string[]): string[] {
  const logFiles = names.filter((n) => n === 'log' || n === 'log-run' || /^log-\d+$/.test(n));
  const rank = (n: string) => (n === 'log-run' ? 0 : n === 'log' ? 2 : 1);
  return [...logFiles].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b, 'en', { numeric: true }));
}

export function isSyncLogName(name: string): boolean {
  return name === 'log' || name === 'log-run' || /^log-\d+$/.test(name);
}
