// deploy/prometheus/: the alert rules on the coordinators' and agents' metrics. promtool (Debian's prometheus
// package, which scripts/setup.sh installs) checks the rule file and runs its unit tests (alerts.test.yml); and every
// alert must have a test that fires it and one that keeps it quiet, a severity, and a summary and description that
// say what to run — so an alert added without a test, or without telling the operator what to do, fails here.
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const RULES = 'deploy/prometheus/alerts.yml';
const TESTS = 'deploy/prometheus/alerts.test.yml';



interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RuleFile {
  groups: { name: string; rules: Rule[] }[];
}
interface AlertTestCase {
  alertname: string;
  eval_time: string;
  exp_alerts?: { exp_labels?: Record<string, string>; exp_annotations?: Record<string, string> }[];
}
interface TestFile {
  rule_files: string[];
  tests: { name?: string; alert_rule_test?: AlertTestCase[] }[];
}

const read = <T>(file: string): T => parse(readFileSync(join(ROOT, file), 'utf8')) as T;

let installed: Promise<void> | undefined;

/**
 * Fails (never skips) when promtool is missing: an uninstalled promtool must not let broken rules pass, in CI
 * (CI=true) or anywhere else.
 */
function requirePromtool(): Promise<void> {
  installed ??= execa('promtool', ['--version'], { reject: false }).then((version) => {
    if (!version.failed) return;
    const where = process.env.CI === 'true' ? ' on this CI host' : '';
    throw new Error(
      `promtool is not installed${where} (${version.code ?? `exit ${version.exitCode}`}): run scripts/setup.sh, which ` +
        "installs Debian's prometheus package (it carries /usr/bin/promtool)",
    );
  });
  return installed;
}

/** promtool's exit code and everything it printed (shown when a check fails). */
async function promtool(args: string[]): Promise<{ exitCode: number | undefined; output: string }> {
  await requirePromtool();
  const r = await execa('promtool', args, { cwd: ROOT, reject: false, all: true });
  return { exitCode: r.exitCode, output: `promtool ${args.join(' ')} (exit ${r.exitCode}):\n${r.all ?? ''}` };
}

describe('Prometheus alert rules (promtool)', () => {
  it(`accepts ${RULES} (promtool check rules)`, async () => {
    const r = await promtool(['check', 'rules', RULES]);
    expect(r.exitCode, r.output).toBe(0);
  });

  it(`passes the unit tests in ${TESTS} (promtool test rules)`, async () => {
    const r = await promtool(['test', 'rules', TESTS]);
    expect(r.exitCode, r.output).toBe(0);
  });
});

describe('every alert is tested and says what to do', () => {
  const rules = read<RuleFile>(RULES);
  const tests = read<TestFile>(TESTS);
  const alerts = rules.groups.flatMap((g) => g.rules.filter((r): r is Rule & { alert: string } => typeof r.alert === 'string'));
  const cases = tests.tests.flatMap((t) => t.alert_rule_test ?? []);
  const names = alerts.map((a) => a.alert);

  it('the rule file has alerts, each name once, and the test file tests that file', () => {
    expect(names.length).toBeGreaterThan(0);
    expect(names.filter((n, i) => names.indexOf(n) !== i), 'alert names used twice').toEqual([]);
    expect(tests.rule_files).toEqual(['alerts.yml']);
  });

  it('each alert has a severity (critical or warning), a summary and a description naming a slotctl command', () => {
    const problems = alerts.flatMap((a) => {
      const out: string[] = [];
      if (!['critical', 'warning'].includes(a.labels?.severity ?? '')) out.push(`${a.alert}: severity label ${JSON.stringify(a.labels?.severity)}, not critical or warning`);
      if (!a.annotations?.summary?.trim()) out.push(`${a.alert}: no summary annotation`);
      if (!a.annotations?.description?.trim()) out.push(`${a.alert}: no description annotation`);
      else if (!/`slotctl [a-z]/.test(a.annotations.description)) out.push(`${a.alert}: the description names no \`slotctl …\` command to run`);
      return out;
    });
    expect(problems).toEqual([]);
  });

  it('each alert has a test case that fires it and one where it stays quiet', () => {
    const firing = new Set(cases.filter((c) => (c.exp_alerts ?? []).length > 0).map((c) => c.alertname));
    const quiet = new Set(cases.filter((c) => (c.exp_alerts ?? []).length === 0).map((c) => c.alertname));
    expect(names.filter((n) => !firing.has(n)), `alerts without a case in ${TESTS} that expects them to fire`).toEqual([]);
    expect(names.filter((n) => !quiet.has(n)), `alerts without a case in ${TESTS} where they must not fire`).toEqual([]);
  });

  it('each firing case expects the annotations too, and the tests name only alerts that exist', () => {
    const unknown = [...new Set(cases.map((c) => c.alertname))].filter((n) => !names.includes(n));
    // a misspelt name would "stay quiet" forever: promtool does not know it is no alert of the rule file
    expect(unknown, `alert_rule_test names no alert of ${RULES}`).toEqual([]);
    const bare = cases.flatMap((c) =>
      (c.exp_alerts ?? []).filter((e) => !e.exp_annotations?.summary || !e.exp_annotations.description).map(() => `${c.alertname} at ${c.eval_time}`),
    );
    expect(bare, 'expected alerts without exp_annotations summary and description').toEqual([]);
  });
});
