// Why a slot does not run, in words an operator can act on: the checks before start (preflight/) that hold it down,
// and the last words of a cyrmaster that exited unasked (its stderr and syslog, master-exit.ts). A failed check is
// the slot's last error and one event until it changes; what to do about either is the supervisor's.
import { withContext, type Logger } from '@slotctl/shared';
import { exitWords } from '../logs/syslog-format.js';
import { PreflightGate } from '../preflight/gate.js';
import type { AppliedSlot } from '../state/apply-plan.js';
import { readCyrusFile } from './files.js';
import type { SlotLayout } from './layout.js';
import { explainExit, masterOutputTail } from './master-exit.js';
import { isSlotMaster, pidAlive } from './process.js';
import type { SlotRuntime } from './runtime.js';

export class FailureWords {
  /** The checks before start: what holds the slot down, and when to look again. */
  readonly gate = new PreflightGate();
  /** When the cyrmaster we spawned started; and whether its exit is being explained (its words read). */
  startedAt = 0;
  explaining = false;

  /** `slot`: the supervisor, whose last error these words become. */
  constructor(
    private readonly slot: { readonly name: string; lastError: string; readonly desired: AppliedSlot | undefined },
    private readonly rt: Pick<SlotRuntime, 'onEvent' | 'outputDir' | 'masterLines'>,
    private readonly log: Logger,
  ) {}

  /** The checks before start for a slot whose PID file names `existing`: '' when they pass, else what failed. */
  async preflight(layout: SlotLayout, existing: number | undefined): Promise<{ problem: string; changed: boolean }> {
    const ownMaster = existing && pidAlive(existing) && isSlotMaster(existing, layout.imapdConf) ? existing : undefined;
    const cyrusConf = await readCyrusFile(layout, layout.cyrusConf).catch(() => '');
    const { problem, changed, cleared } = await this.gate.check({ layout, cyrusConf, ownMaster });
    const log = withContext(this.log, { store: this.slot.desired?.store, epoch: this.slot.desired?.epoch });
    if (cleared) {
      log.info({ was: cleared }, 'the checks before start pass again');
      if (this.slot.lastError === cleared) this.slot.lastError = '';
    }
    if (!problem) return { problem, changed };
    this.slot.lastError = problem;
    if (changed) {
      log.error({ problem }, 'not starting cyrmaster: a check before start failed');
      this.rt.onEvent('preflight-failed', problem);
    }
    return { problem, changed };
  }

  /** Why our cyrmaster `pid` exited unasked: its status and its own words (stderr, then syslog). */
  ofExit(pid: number, code: number | undefined, signal: string | undefined): Promise<string> {
    this.explaining = true;
    return explainExit({
      code,
      signal,
      startedAt: this.startedAt,
      stderr: () => (this.rt.outputDir ? masterOutputTail(this.rt.outputDir, this.slot.name) : Promise.resolve([])),
      // its last seconds: a master that ran for days did not die of an error it logged then
      logLines: () => this.rt.masterLines?.(pid, Math.max(this.startedAt, Date.now() - 5000)) ?? Promise.resolve([]),
      pick: (lines) => exitWords(lines),
      // killed by a signal, it had no last words to wait for
      waitMs: signal ? 0 : 500,
    }).finally(() => (this.explaining = false));
  }
}
