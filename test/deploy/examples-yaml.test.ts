/**
 * Every YAML file under examples/ parses (no duplicate keys), and the deployment examples agree
 * with the image: Kubernetes kinds, probe paths and ports, the compose wiring and Prometheus
 * targets all match the listeners of deploy/container.yaml and the configs they ship.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';
import { loadConfig, parseConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { yamlFiles } from '../helpers/yaml-files.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const EXAMPLES = join(ROOT, 'examples');

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (v !== null && typeof v === 'object' ? (v as Obj) : {});
const list = (v: unknown): Obj[] => (Array.isArray(v) ? v.map(obj) : []);

function documents(file: string): Obj[] {
  return parseAllDocuments(readFileSync(file, 'utf8'), { uniqueKeys: true }).map((d) => {
    assert.deepEqual(d.errors, [], `${relative(ROOT, file)}: ${d.errors.map((e) => e.message).join('; ')}`);
    return obj(d.toJS());
  });
}

function portOf(hostPort: string): number {
  return Number(hostPort.slice(hostPort.lastIndexOf(':') + 1));
}

const container: Config = parseConfig(
  parse(readFileSync(join(ROOT, 'deploy/container.yaml'), 'utf8')),
  'deploy/container.yaml',
);
const PROXY_PORT = portOf(container.listen);
const ADMIN_PORT = portOf(container.admin.listen);

describe('examples/**/*.yaml', () => {
  it('every file is valid YAML without duplicate keys', () => {
    const files = yamlFiles(EXAMPLES);
    assert.ok(files.length >= 10, `found ${files.length} YAML files`);
    for (const file of files) assert.ok(documents(file).length > 0, relative(ROOT, file));
  });
});

describe('examples/kubernetes', () => {
  const dir = join(EXAMPLES, 'kubernetes');
  const docs = yamlFiles(dir).flatMap((f) => documents(f).map((d) => ({ file: f, doc: d })));
  const ofKind = (kind: string) => docs.filter((d) => d.doc.kind === kind).map((d) => d.doc);
  const deployment = ofKind('Deployment')[0] as Obj;
  const pod = obj(obj(obj(deployment.spec).template).spec);
  const containers = list(pod.containers);
  const sidecar = containers.find((c) => c.name === 'sidecache') as Obj;
  const configMap = ofKind('ConfigMap').find((c) => obj(c.data)['config.yaml']) as Obj;
  const podConfig = parseConfig(parse(String(obj(configMap.data)['config.yaml'])), 'ConfigMap config.yaml');

  /** A probe's or Service's port (number or container port name) as a number. */
  function containerPort(c: Obj, port: unknown): number {
    if (typeof port === 'number') return port;
    const named = list(c.ports).find((p) => p.name === port);
    assert.ok(named, `container ${String(c.name)} has no port named ${String(port)}`);
    return Number(named.containerPort);
  }

  it('has the expected kinds, each with apiVersion and a name', () => {
    for (const { file, doc } of docs) {
      assert.equal(typeof doc.apiVersion, 'string', relative(ROOT, file));
      if (doc.kind !== 'Kustomization' && doc.kind !== 'Component') {
        assert.equal(typeof obj(doc.metadata).name, 'string');
      }
    }
    const kinds = new Set(docs.map((d) => d.doc.kind));
    assert.deepEqual([...kinds].sort(), [
      'Component',
      'ConfigMap',
      'Deployment',
      'Kustomization',
      'Service',
      'ServiceMonitor',
    ]);
    const listed = (ofKind('Kustomization')[0]?.resources as string[] | undefined) ?? [];
    assert.ok(listed.length >= 3, 'kustomization lists the resources');
    for (const r of listed) assert.ok(existsSync(join(dir, r)), `kustomization resource ${r}`);
  });

  it("probes sidecache's /readyz and /healthz on the admin port of deploy/container.yaml", () => {
    assert.ok(sidecar, 'a container named sidecache');
    const readiness = obj(obj(sidecar.readinessProbe).httpGet);
    const liveness = obj(obj(sidecar.livenessProbe).httpGet);
    assert.equal(readiness.path, '/readyz');
    assert.equal(liveness.path, '/healthz');
    assert.equal(containerPort(sidecar, readiness.port), ADMIN_PORT);
    assert.equal(containerPort(sidecar, liveness.port), ADMIN_PORT);
    assert.equal(portOf(podConfig.admin.listen), ADMIN_PORT);
    assert.equal(containerPort(sidecar, 'proxy'), PROXY_PORT);
    assert.equal(portOf(podConfig.listen), PROXY_PORT);
    // Probes come from the kubelet, not from inside the pod: the admin listener must not be loopback.
    assert.ok(!podConfig.admin.listen.startsWith('127.'), 'admin listens beyond loopback');
  });

  it('mounts the config from the ConfigMap and the CA from a Secret where the image expects them', () => {
    const mounts = list(sidecar.volumeMounts);
    const volumes = list(pod.volumes);
    const volumeOf = (path: string) => {
      const m = mounts.find((x) => x.mountPath === path);
      assert.ok(m, `a volume mounted at ${path}`);
      return volumes.find((v) => v.name === m.name) as Obj;
    };
    assert.equal(obj(volumeOf('/etc/sidecache').configMap).name, obj(configMap.metadata).name);
    // The CA directory is writable (emptyDir), filled from the Secret by an init container that
    // mounts both, so the key can get mode 0600.
    const caDir = volumeOf('/var/lib/sidecache/ca');
    assert.ok(caDir.emptyDir, 'the CA directory is an emptyDir');
    const init = list(pod.initContainers).find((c) =>
      list(c.volumeMounts).some((m) => m.name === caDir.name && m.mountPath === '/var/lib/sidecache/ca'),
    );
    assert.ok(init, 'an init container fills the CA directory');
    const fromSecret = list(init.volumeMounts)
      .map((m) => volumes.find((v) => v.name === m.name) as Obj)
      .find((v) => v.secret);
    assert.ok(fromSecret, 'from a Secret');
    assert.match(JSON.stringify(init.command), /chmod 600/);
  });

  it('runs non-root with resources on every container, and stops within the grace period', () => {
    const sc = obj(pod.securityContext);
    assert.equal(sc.runAsNonRoot, true);
    assert.ok(Number(sc.runAsUser) > 0);
    for (const c of [...containers, ...list(pod.initContainers)]) {
      const r = obj(c.resources);
      assert.ok(obj(r.requests).cpu && obj(r.requests).memory, `${String(c.name)}: requests`);
      assert.ok(obj(r.limits).memory, `${String(c.name)}: memory limit`);
      assert.equal(obj(c.securityContext).allowPrivilegeEscalation, false, String(c.name));
    }
    assert.ok(
      Number(pod.terminationGracePeriodSeconds) * 1000 > podConfig.shutdown.graceMs,
      'terminationGracePeriodSeconds exceeds shutdown.graceMs',
    );
  });

  it('announces the admin port to Prometheus (annotations, and a ServiceMonitor on a named port)', () => {
    const annotations = obj(obj(obj(obj(deployment.spec).template).metadata).annotations);
    assert.equal(annotations['prometheus.io/scrape'], 'true');
    assert.equal(Number(annotations['prometheus.io/port']), ADMIN_PORT);
    assert.equal(annotations['prometheus.io/path'], '/metrics');
    const monitor = ofKind('ServiceMonitor')[0] as Obj;
    const endpoint = list(obj(monitor.spec).endpoints)[0] as Obj;
    assert.equal(endpoint.path, '/metrics');
    const selector = obj(obj(obj(monitor.spec).selector).matchLabels);
    const service = ofKind('Service').find((s) =>
      Object.entries(selector).every(([k, v]) => obj(obj(s.metadata).labels)[k] === v),
    );
    assert.ok(service, 'a Service matches the ServiceMonitor selector');
    const port = list(obj(service.spec).ports).find((p) => p.name === endpoint.port) as Obj;
    assert.equal(containerPort(sidecar, port.targetPort), ADMIN_PORT);
  });

  it("the app's Service targets a port of the app container", () => {
    const app = containers.find((c) => c.name !== 'sidecache') as Obj;
    const service = ofKind('Service').find((s) => obj(s.metadata).name === 'flask-app') as Obj;
    for (const p of list(obj(service.spec).ports)) assert.ok(containerPort(app, p.targetPort) > 0);
  });
});

describe('examples/compose', () => {
  const dir = join(EXAMPLES, 'compose');
  const compose = documents(join(dir, 'docker-compose.yml'))[0] as Obj;
  const services = obj(compose.services);
  const scConfig = parseConfig(parse(readFileSync(join(dir, 'sidecache.yaml'), 'utf8')), 'sidecache.yaml');

  it('runs the app, sidecache, the fake APIs and Prometheus, each buildable from this repository', () => {
    // Services in a profile (`tracing`) start only when it is asked for.
    const always = Object.entries(services).filter(([, s]) => obj(s).profiles === undefined);
    assert.deepEqual(always.map(([name]) => name).sort(), ['app', 'fake-apis', 'prometheus', 'sidecache']);
    for (const [name, s] of Object.entries(services)) {
      const build = obj(s).build;
      if (build === undefined) continue;
      const context = typeof build === 'string' ? build : String(obj(build).context);
      assert.ok(existsSync(join(dir, context, 'Dockerfile')), `${name}: ${context}/Dockerfile`);
    }
  });

  it("mounts sidecache.yaml where the image reads its config, on deploy/container.yaml's ports", () => {
    const sc = obj(services.sidecache);
    const volumes = (sc.volumes as string[]).map((v) => v.split(':'));
    const config = volumes.find(([, target]) => target === '/etc/sidecache/config.yaml');
    assert.ok(config, 'config mounted at /etc/sidecache/config.yaml');
    assert.ok(existsSync(join(dir, config[0] as string)));
    assert.ok(
      volumes.some(([, target]) => target === '/var/lib/sidecache/ca'),
      'CA volume',
    );
    assert.equal(portOf(scConfig.listen), PROXY_PORT);
    assert.equal(portOf(scConfig.admin.listen), ADMIN_PORT);
    const grace = Number(/^(\d+)s$/.exec(String(sc.stop_grace_period))?.[1]);
    assert.ok(grace * 1000 > scConfig.shutdown.graceMs, 'stop_grace_period exceeds shutdown.graceMs');
  });

  it("points the app's proxy variables at the sidecar and exempts the sidecar itself", () => {
    const env = obj(obj(services.app).environment);
    assert.equal(env.HTTP_PROXY, `http://sidecache:${PROXY_PORT}`);
    assert.equal(env.HTTPS_PROXY, `http://sidecache:${PROXY_PORT}`);
    assert.ok(String(env.NO_PROXY).split(',').includes('sidecache'));
    // Every API base URL the app uses is the origin of a route, so forward-proxy requests are admitted.
    const origins = new Set(scConfig.routes.map((r) => new URL(r.origin).origin));
    for (const key of ['GITHUB_API', 'STRIPE_API', 'USERS_API']) {
      assert.ok(origins.has(new URL(String(env[key])).origin), `${key} is a route origin`);
    }
    const aliases = obj(obj(obj(services['fake-apis']).networks).default).aliases as string[];
    for (const o of origins) assert.ok(aliases.includes(new URL(o).hostname), `fake-apis answers ${o}`);
  });

  it('the tracing profile: a collector receiving OTLP/HTTP and exporting to Jaeger; off by default', () => {
    for (const name of ['otel-collector', 'jaeger']) {
      assert.deepEqual(obj(services[name]).profiles, ['tracing'], `${name} is in the tracing profile`);
    }
    const collector = obj(services['otel-collector']);
    const mount = (collector.volumes as string[])
      .map((v) => v.split(':'))
      .find(([src]) => src === './otel-collector.yaml');
    assert.ok(mount, 'otel-collector.yaml mounted');
    assert.ok(
      (collector.command as string[]).includes(`--config=${mount[1]}`),
      'the collector reads the mounted file',
    );
    const col = documents(join(dir, 'otel-collector.yaml'))[0] as Obj;
    const http = obj(obj(obj(obj(col.receivers).otlp).protocols).http);
    assert.equal(http.endpoint, '0.0.0.0:4318');
    const jaeger = obj(obj(col.exporters)['otlp/jaeger']);
    assert.equal(jaeger.endpoint, 'jaeger:4317');
    const traces = obj(obj(obj(col.service).pipelines).traces);
    assert.deepEqual(traces.exporters, ['otlp/jaeger']);
    assert.deepEqual(traces.receivers, ['otlp']);
    // sidecache takes the endpoint from the environment, empty (tracing off) unless it is set.
    const env = obj(obj(services.sidecache).environment);
    assert.equal(env.OTEL_EXPORTER_OTLP_ENDPOINT, `\${OTEL_EXPORTER_OTLP_ENDPOINT:-}`);
    assert.equal(scConfig.tracing.endpoint, null, 'sidecache.yaml leaves tracing to the variable');
    const withTracing = loadConfig({
      file: join(dir, 'sidecache.yaml'),
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel-collector:4318' },
    }).config;
    assert.equal(withTracing.tracing.endpoint, 'http://otel-collector:4318');
  });

  it("scrapes sidecache's admin port with Prometheus", () => {
    const prom = obj(services.prometheus);
    const mount = (prom.volumes as string[])
      .map((v) => v.split(':'))
      .find(([src]) => src === './prometheus.yml');
    assert.ok(mount, 'prometheus.yml mounted');
    const promConfig = documents(join(dir, 'prometheus.yml'))[0] as Obj;
    const job = list(promConfig.scrape_configs).find((j) => j.job_name === 'sidecache') as Obj;
    assert.equal(job.metrics_path, '/metrics');
    const targets = list(job.static_configs).flatMap((s) => s.targets as string[]);
    assert.deepEqual(targets, [`sidecache:${ADMIN_PORT}`]);
  });
});
