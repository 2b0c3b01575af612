/**
 * The shipped example configs, run as shipped against origins on private addresses: Compose
 * (examples/compose, with the Flask app and the fake APIs), Kubernetes (the config embedded in
 * examples/kubernetes/configmap.yaml, with the Deployment's app environment) and
 * examples/configs/internal-api.yaml. Each runs in a network and mount namespace of its own
 * (examples-private.child.ts): route origins resolve to 10.x / 172.16/12 addresses there and must
 * be served; names admitted only by an `allow` pattern, and redirects to them, must still be
 * refused. Needs unshare (root); skipped without it, except under CI.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import { runChildScript } from '../helpers/child-script.js';
import { hasFlask } from '../helpers/python.js';

const NAMESPACE = ['unshare', '--mount', '--net', '--pid', '--fork', '--kill-child', '--'];
const CHILD = new URL('./examples-private.child.ts', import.meta.url);

interface Seen {
  status: number;
  via: string | null;
  location: string | null;
  body: string;
}
interface PageRun {
  hosts: Record<string, string>;
  pageStatus: number;
  page: string;
  sections: Record<string, { ok: boolean; error?: string }>;
  calls: Array<{ url: string; status: number; via: string | null }>;
}
interface InternalApiRun {
  serviceAddress: string;
  reverse: Seen;
  forward: Seen;
  python: string;
  allowedName: Seen;
  moved: Seen;
  followed: Seen;
  connect: { status: number; body: string };
  serviceRequests: number;
  sentinelConnections: number;
  checkConfig: string;
  sidecacheOutput: string;
}

let canUnshare: Promise<string | null> | undefined;
/** null when a namespace can be made here, else why not. */
function unshareProblem(): Promise<string | null> {
  canUnshare ??= promisify(execFile)(NAMESPACE[0] as string, [
    ...NAMESPACE.slice(1),
    'ip',
    'link',
    'set',
    'lo',
    'up',
  ]).then(
    () => null,
    (err: Error) =>
      `cannot create a network namespace (unshare -m -n, as root): ${err.message.split('\n')[0]}`,
  );
  return canUnshare;
}

async function scenario<T>(t: TestContext, name: string, needsFlask: boolean): Promise<T | null> {
  const problem =
    (await unshareProblem()) ??
    (needsFlask && !(await hasFlask())
      ? 'python3-flask or python3-requests not installed (apt-get install python3-flask python3-requests)'
      : null);
  if (problem !== null) {
    if (process.env.CI === 'true') assert.fail(`${problem} (required in CI)`);
    t.skip(problem);
    return null;
  }
  const child = await runChildScript(CHILD, { args: [name], wrapper: NAMESPACE, killAfterMs: 110_000 });
  const line = child.out.split('\n').find((l) => l.startsWith('RESULT '));
  assert.ok(
    line,
    `the ${name} run printed no result (exit ${child.code} ${child.signal ?? ''}):\n${child.out}`,
  );
  assert.equal(child.code, 0, child.out);
  return JSON.parse(line.slice('RESULT '.length)) as T;
}

/** The Flask page came back 200 with every section filled, each API call through sidecache. */
function assertPage(r: PageRun): void {
  assert.equal(r.pageStatus, 200, r.page);
  assert.doesNotMatch(r.page, /class="error"/, r.page);
  for (const [section, value] of Object.entries(
    r.sections as Record<string, { ok: boolean; error?: string }>,
  )) {
    assert.ok(value.ok, `${section}: ${value.error}`);
  }
  assert.ok(r.calls.length >= 7, JSON.stringify(r.calls));
  for (const call of r.calls) {
    assert.equal(call.status, 200, call.url);
    assert.match(call.via ?? '', /sidecache/, `${call.url} went through sidecache`);
  }
}

describe('shipped examples against origins on private addresses', () => {
  it('Compose: the Flask page is 200 through examples/compose/sidecache.yaml, APIs on 172.18.0.10', async (t) => {
    const r = await scenario<PageRun>(t, 'compose', true);
    if (r === null) return;
    assert.equal(r.hosts['user-service'], '172.18.0.10');
    assertPage(r);
    assert.match(r.page, /Ada \(platform\)/);
    assert.match(r.page, /v7\.3\.0/);
    assert.match(r.page, /123456 eur/);
  });

  it('Kubernetes: the ConfigMap config serves the Deployment app; the cluster service is on 10.96.0.20', async (t) => {
    const r = await scenario<PageRun>(t, 'kubernetes', true);
    if (r === null) return;
    assert.equal(r.hosts['user-service.default.svc.cluster.local'], '10.96.0.20');
    assertPage(r);
    assert.match(r.page, /Ada \(platform\)/);
  });

  it('internal-api.yaml: the route origin on 10.0.0.5 is served; allow-pattern names and redirects to them are refused', async (t) => {
    const r = await scenario<InternalApiRun>(t, 'internal-api', false);
    if (r === null) return;
    assert.equal(r.serviceAddress, '10.0.0.5');
    assert.equal(r.reverse.status, 200, r.reverse.body + r.sidecacheOutput);
    assert.equal(r.forward.status, 200, r.forward.body);
    assert.match(r.forward.via ?? '', /sidecache/);
    assert.match(r.python, /^200 .*sidecache/);
    assert.ok(r.serviceRequests >= 1);
    // An allow-listed name (by "*.svc.cluster.local") resolving to 10.77.0.30 is refused.
    assert.equal(r.allowedName.status, 403, r.allowedName.body);
    assert.equal(JSON.parse(r.allowedName.body).reason, 'guard_private_address');
    // The service's redirect to it is passed to the client, not followed; following it is refused.
    assert.equal(r.moved.status, 302);
    assert.match(r.moved.location ?? '', /^http:\/\/db\.default\.svc\.cluster\.local\/secret$/);
    assert.equal(r.followed.status, 403, r.followed.body);
    assert.equal(JSON.parse(r.followed.body).reason, 'guard_private_address');
    assert.equal(r.connect.status, 403, r.connect.body);
    assert.equal(r.sentinelConnections, 0, 'nothing reached the private host behind the allow pattern');
    // check-config, run there, says the same.
    assert.match(
      r.checkConfig,
      /route "users": user-service\.internal resolves to 10\.0\.0\.5 \(private\): reachable because it is a route origin/,
    );
    assert.match(
      r.checkConfig,
      /allow pattern "\*\.svc\.cluster\.local" matches names that resolve privately/,
    );
  });
});
