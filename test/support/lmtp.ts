// One LMTP delivery attempt, spoken by hand instead of through nodemailer: the load generator must know whether an
// attempt failed before the message was handed over (nothing can have been stored) or after its final dot was sent
// and before the server answered (the server may have stored it: a retry may leave a second copy). nodemailer
// reports both as the same socket error.
import net from 'node:net';

export interface LmtpMessage {
  from: string;
  to: string;
  /** The whole message, CRLF line ends, without the terminating dot. */
  raw: string;
}

export interface LmtpAttempt {
  outcome: 'ok' | 'retry' | 'rejected';
  /** The final dot was sent and no reply came: the server may hold the message although we got no 250. */
  cutAfterData: boolean;
  reason: string;
}

export interface LmtpTimeouts {
  connectMs: number;
  replyMs: number;
}

/** An RFC 5322 message with CRLF line ends; the same arguments give the same bytes (a retry sends what was sent). */
export function rawMessage(headers: Record<string, string>, body: string): string {
  const head = Object.entries(headers).map(([k, v]) => `${k}: ${v}`).join('\r\n');
  return `${head}\r\n\r\n${body.replace(/\r?\n/g, '\r\n')}`;
}

/** Lines that start with a dot get a second one (RFC 5321 4.5.2), and the data ends with CRLF. */
function dotStuff(raw: string): string {
  const text = raw.endsWith('\r\n') ? raw : `${raw}\r\n`;
  return text.replace(/^\./gm, '..');
}

class Replies {
  private buffer = '';
  private lines: string[] = [];
  private waiter: ((reply: string | Error) => void) | undefined;
  private failure: Error | undefined;

  constructor(private readonly socket: net.Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      let i: number;
      while ((i = this.buffer.indexOf('\n')) >= 0) {
        const line = this.buffer.slice(0, i).replace(/\r$/, '');
        this.buffer = this.buffer.slice(i + 1);
        this.lines.push(line);
        // the last line of a reply has a space (or nothing) after its code, the others a dash
        if (line.length < 4 || line[3] !== '-') this.settle(this.lines.join('\n'));
      }
    });
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error('connection closed')));
  }

  private settle(reply: string | Error): void {
    this.lines = [];
    const w = this.waiter;
    this.waiter = undefined;
    w?.(reply);
  }

  private fail(err: Error): void {
    this.failure ??= err;
    if (this.waiter) this.settle(err);
  }

  /** The next complete reply; rejects on a socket error, a close or after `ms`. */
  next(ms: number): Promise<string> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.settle(new Error(`no reply within ${ms} ms`)), ms);
      this.waiter = (reply) => {
        clearTimeout(timer);
        if (reply instanceof Error) reject(reply);
        else resolve(reply);
      };
    });
  }
}

const code = (reply: string) => Number(reply.slice(0, 3));

/** Delivers one message to one recipient: ok on 250 after the data, retry on 4xx or any failure, rejected on 5xx. */
export async function lmtpDeliverOnce(host: string, port: number, message: LmtpMessage, timeouts: LmtpTimeouts = { connectMs: 2000, replyMs: 5000 }): Promise<LmtpAttempt> {
  const socket = net.connect({ host, port });
  const replies = new Replies(socket);
  let dataSent = false;
  let ok = false;
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no connection within ${timeouts.connectMs} ms`)), timeouts.connectMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    const step = async (what: string, line: string | undefined, want: number): Promise<LmtpAttempt | undefined> => {
      if (line !== undefined) socket.write(`${line}\r\n`);
      const reply = await replies.next(what === 'greeting' ? timeouts.connectMs : timeouts.replyMs);
      if (code(reply) === want) return undefined;
      return { outcome: code(reply) >= 500 ? 'rejected' : 'retry', cutAfterData: false, reason: `${what}: ${reply}` };
    };
    const refused =
      (await step('greeting', undefined, 220)) ??
      (await step('LHLO', 'LHLO load.slotctl.test', 250)) ??
      (await step('MAIL FROM', `MAIL FROM:<${message.from}>`, 250)) ??
      (await step('RCPT TO', `RCPT TO:<${message.to}>`, 250)) ??
      (await step('DATA', 'DATA', 354));
    if (refused) return refused;
    socket.write(`${dotStuff(message.raw)}.\r\n`);
    dataSent = true;
    // LMTP answers once per recipient: one here
    const reply = await replies.next(timeouts.replyMs);
    dataSent = false; // answered: whatever it says, the server has decided
    if (code(reply) === 250) {
      ok = true;
      return { outcome: 'ok', cutAfterData: false, reason: reply };
    }
    return { outcome: code(reply) >= 500 ? 'rejected' : 'retry', cutAfterData: false, reason: `after data: ${reply}` };
  } catch (err) {
    return { outcome: 'retry', cutAfterData: dataSent, reason: `${dataSent ? 'after data' : 'before data'}: ${(err as Error).message}` };
  } finally {
    if (ok) {
      // a polite goodbye; the socket is dropped after a second whatever the server does
      socket.end('QUIT\r\n');
      socket.setTimeout(1000, () => socket.destroy());
    } else socket.destroy();
  }
}
