// The recovery listener: a temporary sync_server a running master opens so that an old master, back after a crash,
// can push it the mailboxes only it had. Opened and closed without a restart: cyrus.conf rewritten, then SIGHUP
// (measured: listening after 0.13 s).
import { withContext, type Logger } from '@slotctl/shared';
import type { AppliedSlot } from '../state/apply-plan.js';
import { writeCyrusFile } from './files.js';
import type { SlotLayout } from './layout.js';
import { tcpAccepts } from './process.js';
import type { SlotRuntime } from './runtime.js';

export class RecoverListener {
  /** The recovery whose temporary sync_server this master has open ('' = none). */
  listening = '';
  /** The recovery the config last written asks for: a master started with it listens once ready. */
  private wanted = '';

  /** `slot`: the supervisor, whose running master is signalled. */
  constructor(
    private readonly slot: { readonly pid: number | undefined },
    private readonly rt: Pick<SlotRuntime, 'ports' | 'onChange'>,
    private readonly log: Logger,
  ) {}

  /** The config about to be written asks for the listener of recovery `op` ('' = none: it is not open). */
  want(op: string): void {
    this.wanted = op;
    if (!op) this.listening = '';
  }

  /** The master became ready: it was started with the listener its config asks for (a restart during a recovery). */
  started(): void {
    this.listening = this.wanted;
  }

  /** Opens (`op`) or closes ('') the listener of the running master, writing `cyrusConf`. Open means the port accepts. */
  async toggle(d: AppliedSlot, layout: SlotLayout, cyrusConf: string, op: string): Promise<void> {
    await writeCyrusFile(layout, layout.cyrusConf, cyrusConf);
    process.kill(this.slot.pid!, 'SIGHUP');
    const log = withContext(this.log, { store: d.store, epoch: d.epoch, op: op || this.listening });
    if (!op) {
      this.listening = '';
      log.info('recovery listener closed (SIGHUP)');
      this.rt.onChange();
      return;
    }
    for (let i = 0; i < 100 && !(await tcpAccepts(d.slotIp, this.rt.ports.sync, 200)); i++) await new Promise((r) => setTimeout(r, 50));
    this.listening = op;
    log.info({ ip: d.slotIp, port: this.rt.ports.sync }, 'recovery listener open (SIGHUP): a returned old master may push its mailboxes');
    this.rt.onChange();
  }
}
