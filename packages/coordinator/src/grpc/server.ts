// The coordinator's gRPC server, alive for the whole process: agents and slotctl keep their connections to it while
// leadership comes and goes (etcd backend). Every call is routed to the leader's handlers while this coordinator
// leads (`serve`) and otherwise answered "not the leader", with the leader's address when one is known — the answer
// agents and slotctl follow (@slotctl/shared leader.ts). Between its election and serving (reading the cluster from
// etcd takes a second or more), a coordinator holds the calls it gets and hands them over once it serves: refused,
// a thousand agents would retry every few hundred ms, and their handshakes would slow the very load they wait for.
import * as grpc from '@grpc/grpc-js';
import { type AdminHandlers, type AgentHandlers, type CertificateFiles, MAX_MESSAGE_BYTES, loadContract, notLeaderStatus, serverCredentials } from '@slotctl/shared';
import { listen } from './listener.js';

export interface Handlers {
  agent: AgentHandlers;
  admin: AdminHandlers;
}

type AnyHandler = (...args: unknown[]) => unknown;

/** The longest a call waits for an elected coordinator to serve (an agent waits 5 s for its welcome). */
const HOLD_MAX_MS = 3000;

export class CoordinatorServer {
  private readonly server: grpc.Server;
  private active: Handlers | undefined;
  private leader: string | undefined;
  /** While elected and not yet serving: the calls held, run once `serve` or `follow` is called. */
  private held: (() => void)[] | undefined;
  private heldTimer: NodeJS.Timeout | undefined;
  private closeListener: (() => void) | undefined;
  port = 0;

  /** `self`: this coordinator's address as others know it (for the follower's answer). */
  constructor(private readonly self: string, private readonly certificates: CertificateFiles | undefined) {
    this.server = new grpc.Server({
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.http2.min_ping_interval_without_data_ms': 5_000,
      // cluster files and status replies of large clusters exceed the 4 MB default
      'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
      'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
      // channelz (grpc-js's live introspection, unused here) keeps a record of every connection and call: a thousand
      // agents' streams and their renewals over fresh connections were work and memory for nothing
      'grpc.enable_channelz': 0,
    });
    const contract = loadContract().slotctl.v1;
    this.server.addService(contract.Agent.service, this.route(contract.Agent.service, 'agent'));
    this.server.addService(contract.Admin.service, this.route(contract.Admin.service, 'admin'));
  }

  /** Whether this process serves as the leader now, and otherwise the leader's address when known (health checks). */
  get leadership(): { leading: boolean; leader: string | undefined; address: string } {
    return { leading: this.active !== undefined, leader: this.active ? this.self : this.leader, address: this.self };
  }

  /** The leader's handlers take every call from now on. */
  serve(handlers: Handlers): void {
    this.active = handlers;
    this.release();
  }

  /** Calls are answered "not the leader" from now on; `leader`: the leader's address when known. */
  follow(leader: string | undefined): void {
    this.active = undefined;
    this.leader = leader;
    this.release();
  }

  /** Elected, not serving yet: calls wait (at most `maxMs`, then they are answered as a follower would). */
  elected(maxMs = HOLD_MAX_MS): void {
    this.active = undefined;
    this.leader = undefined;
    this.held ??= [];
    clearTimeout(this.heldTimer);
    this.heldTimer = setTimeout(() => this.release(), maxMs);
  }

  private release(): void {
    clearTimeout(this.heldTimer);
    const held = this.held ?? [];
    this.held = undefined;
    for (const run of held) run();
  }

  async listen(address: string): Promise<number> {
    // every handler refuses a caller without a verified identity (AgentSessions.assertIdentity, the Admin roles), so a
    // refused agent can be recorded as an event rather than vanish in a failed handshake
    const listening = await listen(this.server, address, serverCredentials(this.certificates, { refuseInHandlers: true }));
    this.closeListener = listening.close;
    this.port = listening.port;
    return this.port;
  }

  /** Stops accepting connections; ends calls after `graceMs`. */
  async close(graceMs = 3000): Promise<void> {
    this.closeListener?.();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, graceMs);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private route(service: grpc.ServiceDefinition, which: keyof Handlers): grpc.UntypedServiceImplementation {
    const out: grpc.UntypedServiceImplementation = {};
    for (const [name, method] of Object.entries(service)) {
      const unary = !method.responseStream;
      const originalName = (method as { originalName?: string }).originalName ?? name;
      const call = (...args: unknown[]): unknown => {
        if (this.held) {
          // a caller that gave up meanwhile is not handed over: its stream's end was emitted before any handler listened
          this.held.push(() => {
            if (!(args[0] as { cancelled?: boolean }).cancelled) call(...args);
          });
          return;
        }
        const handlers = this.active?.[which] as unknown as Record<string, AnyHandler> | undefined;
        const handler = handlers?.[name] ?? handlers?.[originalName];
        if (handler) return handler(...args);
        const status = notLeaderStatus(this.self, this.leader);
        if (unary) (args[1] as grpc.sendUnaryData<unknown>)(status as grpc.ServiceError, null);
        else (args[0] as grpc.ServerDuplexStream<unknown, unknown>).emit('error', Object.assign(new Error(status.details), status));
      };
      out[name] = call as grpc.UntypedHandleCall;
    }
    return out;
  }
}
