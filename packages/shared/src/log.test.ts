import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, redactSecrets, withContext } from './log.js';

/** A logger whose lines are kept, parsed. */
function capture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { log: createLogger('test', { level: 'info', destination }), lines };
}

describe('logs never carry a secret', () => {
  it('prints every field that may hold one as [Redacted], top level and nested', () => {
    const { log, lines } = capture();
    withContext(log, { slot: 's01-m1' }).info(
      {
        password: 'p1',
        sync_password: 'p2',
        auth: { mode: 'sasldb', syncUser: 'admin', syncPassword: 'p3' },
        client: { auth: { user: 'admin', pass: 'p4' } },
        request: { headers: { authorization: 'Basic p5' } },
        tls: { key: 'p6', cert: 'public' },
        opts: { runtime: { auth: { syncPassword: 'p7' } } },
        secret: 'p8',
        sasl_password: 'p9',
      },
      'starting',
    );
    const text = lines.join('');
    for (const p of ['p1', 'p2', 'p3', 'p4', 'Basic p5', 'p6', 'p7', 'p8', 'p9']) expect(text).not.toContain(`"${p}"`);
    const line = JSON.parse(lines[0]!) as Record<string, any>;
    expect(line.password).toBe('[Redacted]');
    expect(line.sync_password).toBe('[Redacted]');
    expect(line.auth).toEqual({ mode: 'sasldb', syncUser: 'admin', syncPassword: '[Redacted]' });
    expect(line.client.auth).toEqual({ user: 'admin', pass: '[Redacted]' });
    expect(line.request.headers.authorization).toBe('[Redacted]');
    expect(line.tls).toEqual({ key: '[Redacted]', cert: 'public' });
    expect(line.opts.runtime.auth.syncPassword).toBe('[Redacted]');
    expect([line.secret, line.sasl_password]).toEqual(['[Redacted]', '[Redacted]']);
    // what is not secret is kept
    expect([line.slot, line.msg, line.auth.syncUser]).toEqual(['s01-m1', 'starting', 'admin']);
  });

  it("redacts at any depth, inside arrays and a child logger's bindings, and leaves the logged object as it was", () => {
    const { log, lines } = capture();
    const opts = { machine: 'm1', auth: { syncPassword: 'p1' } };
    log.child({ password: 'p0' }).warn({ opts, list: [{ a: { b: { c: { d: { password: 'p2' } } } } }], err: new Error('boom') }, 'x');
    const line = JSON.parse(lines[0]!) as Record<string, any>;
    expect(lines[0]).not.toMatch(/"p[012]"/);
    expect(line.password).toBe('[Redacted]');
    expect(line.opts).toEqual({ machine: 'm1', auth: { syncPassword: '[Redacted]' } });
    expect(line.list[0].a.b.c.d.password).toBe('[Redacted]');
    expect(line.err.message).toBe('boom'); // errors still serialized
    expect(opts.auth.syncPassword).toBe('p1');
    const plain = { a: 1, b: { c: 2 } };
    expect(redactSecrets(plain)).toBe(plain); // nothing to hide: no copy
  });
});
