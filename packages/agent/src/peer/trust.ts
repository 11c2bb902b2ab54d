// Pure: how far this agent trusts a caller of its Peer service. A certificate signed by the cluster CA proves a
// machine, not a reason to ask: only the agent of a machine that shares a store with this one (a partner in the
// current desired state) is served, and it speaks only for itself. What it asks is bounded too — names that are
// mailboxes, not patterns or options; a limited number per request; a few requests at work at once — so that no
// partner, however buggy, can keep Cyrus tools running on this machine without end.
import { type Identity, mailboxProblem, UnavailableError, ValidationError } from '@slotctl/shared';

/** Mailboxes (or users) in one MailboxGuids (or SyncUsers) request; an asker of this version sends batches of it. */
export const MAX_NAMES_PER_REQUEST = 1000;
/** Requests that run Cyrus tools (mbexamine, cyr_synclog) at once, and how many more may wait their turn. */
export const PEER_WORK_CONCURRENCY = 4;
export const PEER_WORK_QUEUE = 16;

/**
 * Why a caller may not be served (undefined: it may). `claimed` is the machine the request says it comes from
 * (Confirm's `machine`), which must be the certificate's: a promise given to one machine on another's word would
 * withhold the wrong promotions.
 */
export function peerCallProblem(caller: Identity | undefined, self: string, partners: ReadonlySet<string>, claimed?: string): string | undefined {
  if (!caller) return 'the caller presented no slotctl certificate';
  if (caller.role !== 'agent') return `the caller's certificate is for ${caller.role} ${caller.name}, not for an agent`;
  if (!partners.has(caller.name)) return `agent ${caller.name} shares no store with ${self}`;
  if (claimed !== undefined && claimed !== caller.name) return `agent ${caller.name} asks as machine "${claimed}": a partner speaks only for itself`;
  return undefined;
}

/** Throws a ValidationError unless every name may reach a Cyrus tool's command line, and there are not too many. */
export function checkPeerNames(kind: 'mailbox' | 'user', names: readonly string[]): void {
  if (names.length > MAX_NAMES_PER_REQUEST) {
    throw new ValidationError(`${names.length} ${kind} names in one request: at most ${MAX_NAMES_PER_REQUEST} are served`, { hint: `ask in batches of ${MAX_NAMES_PER_REQUEST} (agents of this version do)` });
  }
  for (const name of names) {
    const problem = mailboxProblem(name) ?? (kind === 'user' && name.includes('/') ? `user name "${name.slice(0, 80)}" contains "/"` : undefined);
    if (problem) throw new ValidationError(`a ${kind} refused: ${problem}`, { hint: 'internal names as sync logs write them (user.bob^smith.Sent), never a pattern' });
  }
}

/** `items` in batches of at most `size`, in order. */
export function batches<T>(items: readonly T[], size = MAX_NAMES_PER_REQUEST): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * At most `limit` jobs at once and `queueMax` waiting; beyond that a job is refused at once (UnavailableError) rather
 * than piling up. A waiting job whose caller gave up (`wanted` false when its turn comes) is dropped unrun.
 */
export class WorkGate {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly limit = PEER_WORK_CONCURRENCY, private readonly queueMax = PEER_WORK_QUEUE) {}

  get busy(): { running: number; waiting: number } {
    return { running: this.running, waiting: this.waiting.length };
  }

  async run<T>(job: () => Promise<T>, wanted: () => boolean = () => true): Promise<T> {
    if (this.running >= this.limit) {
      if (this.waiting.length >= this.queueMax) {
        throw new UnavailableError(`busy: ${this.running} Peer requests run and ${this.waiting.length} wait`, { hint: 'ask again in a moment' });
      }
      await new Promise<void>((resolve) => this.waiting.push(resolve));
      // the slot freed for this job is held until it ends
    } else {
      this.running++;
    }
    try {
      if (!wanted()) throw new UnavailableError('the caller gave up while the request waited its turn');
      return await job();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }
}

