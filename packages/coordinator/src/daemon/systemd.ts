// The coordinator under systemd (deploy/systemd/slot-coordinator.service, Type=notify): READY=1 once its gRPC server
// listens — with etcd whether it leads or follows (a follower serves: it points every caller at the leader) — and
// STATUS= saying which, refreshed as leadership changes. Outside systemd (no NOTIFY_SOCKET) nothing is sent.
import { SystemdNotifier, type Logger } from '@slotctl/shared';

/** How often the STATUS line is looked at again (a change of leader); a look costs nothing when it did not change. */
const STATUS_EVERY_MS = 5000;

/** The coordinator's STATUS= line. Pure. */
export function coordinatorStatus(listen: string, store: 'sqlite' | 'etcd', leadership: { leading: boolean; leader: string | undefined }): string {
  if (store === 'sqlite') return `serving on ${listen} (sqlite)`;
  if (leadership.leading) return `serving on ${listen}: leading (etcd)`;
  return `serving on ${listen}: following, ${leadership.leader ? `leader ${leadership.leader}` : 'no leader elected yet'} (etcd)`;
}

export class CoordinatorSystemd {
  private readonly notifier: SystemdNotifier;
  private timer: NodeJS.Timeout | undefined;

  constructor(log: Logger, env: NodeJS.ProcessEnv = process.env) {
    this.notifier = new SystemdNotifier({ log, env });
  }

  /** The gRPC server listens: ready, and the status line kept up to date. */
  ready(status: () => string): void {
    if (!this.notifier.enabled) return;
    void this.notifier.ready(status());
    this.timer = setInterval(() => this.notifier.status(status()), STATUS_EVERY_MS).unref();
  }

  stopping(signal: string): void {
    clearInterval(this.timer);
    void this.notifier.stopping(`stopping (${signal})`);
  }
}
