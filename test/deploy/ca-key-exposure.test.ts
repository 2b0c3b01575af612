/**
 * The interception CA's private key reaches sidecache only (DESIGN, "Who is trusted"): in the
 * Compose example no other service mounts the CA directory's volume (or a host path holding it),
 * and in the Kubernetes example no other container mounts the CA emptyDir or the Secret's
 * `ca-key.pem` (the app mounts `items: [ca.pem]` only). Each check is also run on a copy with the
 * leak put back, so it is known to catch it.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';
import { all, envPairs, parseDockerfile } from '../helpers/dockerfile.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const KEY_FILE = 'ca-key.pem';

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (v !== null && typeof v === 'object' ? (v as Obj) : {});
const list = (v: unknown): Obj[] => (Array.isArray(v) ? v.map(obj) : []);

/** SIDECACHE_CA_DIR as the image sets it. */
function imageCaDir(): string {
  const stage = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8')).stages.at(-1);
  assert.ok(stage);
  const env = Object.fromEntries(all(stage, 'ENV').flatMap((i) => envPairs(i.args)));
  assert.ok(env.SIDECACHE_CA_DIR, 'the image sets SIDECACHE_CA_DIR');
  return env.SIDECACHE_CA_DIR;
}

/** `a` is `b` or one holds the other. */
function overlaps(a: string, b: string): boolean {
  const inside = (x: string, y: string) => {
    const r = relative(y, x);
    return r === '' || (!r.startsWith('..') && !isAbsolute(r));
  };
  return inside(a, b) || inside(b, a);
}

interface Mount {
  source: string;
  target: string;
}

/** A Compose service's volumes, short (`src:dst[:mode]`) or long syntax; host paths made absolute. */
function composeMounts(service: Obj, dir: string): Mount[] {
  return (Array.isArray(service.volumes) ? service.volumes : []).map((v: unknown) => {
    const m =
      typeof v === 'string'
        ? { source: v.split(':')[0] ?? '', target: v.split(':')[1] ?? v }
        : { source: String(obj(v).source ?? ''), target: String(obj(v).target ?? '') };
    const hostPath = m.source.startsWith('.') || m.source.startsWith('/') || m.source.startsWith('~');
    return { source: hostPath ? resolve(dir, m.source) : m.source, target: m.target };
  });
}

/** A service runs sidecache when it is built from this repository or uses its image. */
function isSidecache(service: Obj, dir: string): boolean {
  const build = service.build;
  const context = typeof build === 'string' ? build : build === undefined ? null : String(obj(build).context);
  if (context !== null && resolve(dir, context) === resolve(ROOT)) return true;
  return /^sidecache(:|$)/.test(String(service.image ?? ''));
}

/** Names of the Compose services other than sidecache that can read the CA key, with how. */
function composeKeyReaders(compose: Obj, dir: string): string[] {
  const services = Object.entries(obj(compose.services)).map(([name, s]) => ({ name, s: obj(s) }));
  const keySources: string[] = [];
  const sidecacheNames: string[] = [];
  for (const { name, s } of services) {
    if (!isSidecache(s, dir)) continue;
    sidecacheNames.push(name);
    const caDir = String(obj(s.environment).SIDECACHE_CA_DIR ?? imageCaDir());
    for (const m of composeMounts(s, dir)) if (overlaps(m.target, caDir)) keySources.push(m.source);
  }
  assert.ok(sidecacheNames.length > 0, 'a sidecache service');
  const readers: string[] = [];
  for (const { name, s } of services) {
    if (sidecacheNames.includes(name)) continue;
    for (const m of composeMounts(s, dir)) {
      const leaks = keySources.some((k) =>
        isAbsolute(k) && isAbsolute(m.source) ? overlaps(k, m.source) : k === m.source,
      );
      if (leaks) readers.push(`${name} mounts ${m.source} (the CA directory) at ${m.target}`);
    }
    for (const from of Array.isArray(s.volumes_from) ? s.volumes_from : []) {
      if (sidecacheNames.includes(String(from).split(':')[0] as string))
        readers.push(`${name}: volumes_from ${from}`);
    }
    if (JSON.stringify([s.secrets, s.configs, s.env_file]).includes(KEY_FILE))
      readers.push(`${name}: ${KEY_FILE} as secret/config`);
  }
  return readers;
}

/** Containers of a pod spec, other than sidecache's, that can read the CA key, with how. */
function podKeyReaders(pod: Obj): string[] {
  const containers = [...list(pod.initContainers), ...list(pod.containers)];
  const volumes = list(pod.volumes);
  const caDir = imageCaDir();
  const runsSidecache = (c: Obj) => /(^|\/)sidecache(:|@|$)/.test(String(c.image ?? ''));
  // Volumes that hold the key: whatever a sidecache container mounts over its CA directory, and
  // the CA Secret (one a sidecache container mounts, or one whose items name the key) projected
  // whole or with the key among its items.
  const volumeNamed = (name: unknown) => volumes.find((v) => v.name === name);
  const keyVolumes = new Set<string>();
  const caSecrets = new Set<string>();
  for (const c of containers.filter(runsSidecache)) {
    for (const m of list(c.volumeMounts)) {
      if (overlaps(String(m.mountPath), caDir)) keyVolumes.add(String(m.name));
      const secret = volumeNamed(m.name)?.secret;
      if (secret) caSecrets.add(String(obj(secret).secretName));
    }
  }
  const namesKey = (v: Obj) => list(obj(v.secret).items).some((i) => i.key === KEY_FILE);
  for (const v of volumes) if (namesKey(v)) caSecrets.add(String(obj(v.secret).secretName));
  for (const v of volumes) {
    const s = obj(v.secret);
    if (v.secret && caSecrets.has(String(s.secretName)) && (s.items === undefined || namesKey(v))) {
      keyVolumes.add(String(v.name));
    }
  }
  const readers: string[] = [];
  for (const c of containers) {
    if (runsSidecache(c)) continue;
    for (const m of list(c.volumeMounts)) {
      if (keyVolumes.has(String(m.name)))
        readers.push(`${String(c.name)} mounts ${String(m.name)} at ${String(m.mountPath)}`);
    }
    for (const e of list(c.env)) {
      const ref = obj(obj(e.valueFrom).secretKeyRef);
      if (ref.key === KEY_FILE) readers.push(`${String(c.name)}: env ${String(e.name)} from ${KEY_FILE}`);
    }
    for (const e of list(c.envFrom)) {
      if (caSecrets.has(String(obj(e.secretRef).name)))
        readers.push(`${String(c.name)}: envFrom the CA Secret`);
    }
  }
  return readers;
}

describe('the CA key reaches sidecache only', () => {
  const composeDir = join(ROOT, 'examples/compose');
  const compose = obj(parse(readFileSync(join(composeDir, 'docker-compose.yml'), 'utf8')));
  const deployment = parseAllDocuments(
    readFileSync(join(ROOT, 'examples/kubernetes/deployment.yaml'), 'utf8'),
  )
    .map((d) => obj(d.toJS()))
    .find((d) => d.kind === 'Deployment');
  const pod = obj(obj(obj(obj(deployment).spec).template).spec);

  it('Compose: no service but sidecache mounts the CA volume', () => {
    assert.deepEqual(composeKeyReaders(compose, composeDir), []);
  });

  it('Compose: the check catches the app mounting the CA volume, or a host directory holding it', () => {
    const leaky = structuredClone(compose);
    const services = obj(leaky.services);
    const app = obj(services.app);
    const sidecache = obj(services.sidecache);
    const caMount = (sidecache.volumes as string[]).find((v) => v.split(':')[1] === imageCaDir());
    assert.ok(caMount, 'sidecache mounts a volume at its CA directory');
    app.volumes = [
      ...((app.volumes as string[] | undefined) ?? []),
      `${caMount.split(':')[0]}:/etc/sidecache-ca:ro`,
    ];
    assert.equal(composeKeyReaders(leaky, composeDir).length, 1);
    const viaHost = structuredClone(compose);
    obj(obj(viaHost.services).sidecache).volumes = ['./state:/var/lib/sidecache'];
    obj(obj(viaHost.services).app).volumes = [{ type: 'bind', source: './state/ca', target: '/ca' }];
    assert.equal(composeKeyReaders(viaHost, composeDir).length, 1);
  });

  it('Kubernetes: the app mounts only ca.pem from the CA Secret, never the key or the CA directory', () => {
    assert.deepEqual(podKeyReaders(pod), []);
    const app = list(pod.containers).find((c) => c.name === 'app') as Obj;
    const certMount = list(app.volumeMounts).find((m) =>
      list(pod.volumes).some((v) => v.name === m.name && v.secret),
    );
    assert.ok(certMount, 'the app mounts the CA certificate');
    const volume = list(pod.volumes).find((v) => v.name === certMount.name) as Obj;
    assert.deepEqual(
      list(obj(volume.secret).items).map((i) => i.key),
      ['ca.pem'],
    );
  });

  it('Kubernetes: the check catches the whole Secret or the CA emptyDir mounted into the app', () => {
    for (const leak of ['no items', 'emptyDir'] as const) {
      const leaky = structuredClone(pod);
      const app = list(leaky.containers).find((c) => c.name === 'app') as Obj;
      if (leak === 'no items') {
        const v = list(leaky.volumes).find((x) => obj(x.secret).items !== undefined) as Obj;
        delete obj(v.secret).items;
        leaky.volumes = list(leaky.volumes).map((x) => (x.name === v.name ? v : x));
      } else {
        const sidecache = list(leaky.containers).find((c) => c.name === 'sidecache') as Obj;
        const ca = list(sidecache.volumeMounts).find((m) => m.mountPath === imageCaDir()) as Obj;
        app.volumeMounts = [...list(app.volumeMounts), { name: ca.name, mountPath: '/ca', readOnly: true }];
      }
      leaky.containers = list(leaky.containers).map((c) => (c.name === 'app' ? app : c));
      assert.ok(podKeyReaders(leaky).length > 0, leak);
    }
  });
});
