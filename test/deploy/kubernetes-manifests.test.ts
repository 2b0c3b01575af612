/**
 * examples/kubernetes applies on a bare cluster and every manifest in it is valid Kubernetes:
 * `kubectl apply -k examples/kubernetes` yields only built-in kinds (the ServiceMonitor, which needs
 * the Prometheus Operator's CRDs, is an opt-in kustomize component), and each manifest passes the
 * JSON schema validation of the `kubernetes-models` packages (the Kubernetes OpenAPI schemas; the
 * ServiceMonitor against the Operator's CRD schema). Where kubectl is installed, its kustomize
 * renders the same resources.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse, parseAllDocuments } from 'yaml';
import { findExecutable } from '../helpers/system-tool.js';
import { yamlFiles } from '../helpers/yaml-files.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DIR = join(ROOT, 'examples/kubernetes');

type Obj = Record<string, unknown>;
interface Manifest {
  readonly file: string;
  readonly doc: Obj;
}

function documents(file: string): Obj[] {
  return parseAllDocuments(readFileSync(file, 'utf8'), { uniqueKeys: true }).map((d) => {
    assert.deepEqual(d.errors, [], relative(ROOT, file));
    return d.toJS() as Obj;
  });
}

const isKustomization = (file: string) => /(^|\/)kustomization\.ya?ml$/.test(file);

/**
 * What kustomize builds from the kustomization in `dir` (its `resources` and `components`, files or
 * directories): enough of kustomize for these examples, which use no patches or generators.
 */
function build(
  dir: string,
  kustomization: Obj = documents(join(dir, 'kustomization.yaml'))[0] as Obj,
): Manifest[] {
  const entries = [
    ...((kustomization.resources as string[] | undefined) ?? []),
    ...((kustomization.components as string[] | undefined) ?? []),
  ];
  return entries.flatMap((entry) => {
    const path = join(dir, entry);
    assert.ok(existsSync(path), `${relative(ROOT, dir)}: ${entry} does not exist`);
    if (statSync(path).isDirectory()) return build(path);
    return documents(path).map((doc) => ({ file: path, doc }));
  });
}

/** The kustomization with its commented `components:` block put back, as the comment says. */
function withCommentedComponents(): Obj {
  const text = readFileSync(join(DIR, 'kustomization.yaml'), 'utf8');
  const uncommented = text.replace(
    /^# (components:\n)((?:# {3}- .*\n)+)/m,
    (_m, head: string, items: string) => head + items.replace(/^# /gm, ''),
  );
  assert.notEqual(uncommented, text, 'kustomization.yaml shows how to opt in to the ServiceMonitor');
  return parse(uncommented) as Obj;
}

/** The kubernetes-models class for `apiVersion` and `kind`: built-in kinds, or the Operator's. */
async function modelFor(apiVersion: string, kind: string): Promise<new (data: Obj) => { validate(): void }> {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  const path =
    group === 'monitoring.coreos.com'
      ? `@kubernetes-models/prometheus-operator/${group}/${version}/${kind}`
      : `kubernetes-models/${group ? `${group}/` : ''}${version}/${kind}`;
  const mod = (await import(path)) as Record<string, new (data: Obj) => { validate(): void }>;
  const model = mod[kind];
  assert.ok(model, `no model for ${apiVersion} ${kind}`);
  return model;
}

/** Builtin: kubernetes-models (no CRD package) has a model for it. */
async function isBuiltIn(apiVersion: string, kind: string): Promise<boolean> {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  try {
    await import(`kubernetes-models/${group ? `${group}/` : ''}${version}/${kind}`);
    return true;
  } catch {
    return false;
  }
}

async function validate(m: Manifest): Promise<void> {
  const { apiVersion, kind } = m.doc as { apiVersion: string; kind: string };
  const Model = await modelFor(apiVersion, kind);
  try {
    new Model(m.doc).validate();
  } catch (err) {
    assert.fail(
      `${relative(ROOT, m.file)}: ${kind} ${String((m.doc.metadata as Obj)?.name)}: ${String(err)}`,
    );
  }
}

const kinds = (ms: readonly Manifest[]) => ms.map((m) => String(m.doc.kind)).sort();

describe('examples/kubernetes manifests', () => {
  it('the default kustomization builds only built-in kinds: it applies without the Prometheus Operator', async () => {
    const built = build(DIR);
    assert.deepEqual(kinds(built), ['ConfigMap', 'Deployment', 'Service', 'Service']);
    for (const m of built) {
      const { apiVersion, kind } = m.doc as { apiVersion: string; kind: string };
      assert.ok(await isBuiltIn(apiVersion, kind), `${kind} (${apiVersion}) needs a CRD`);
    }
  });

  it('the ServiceMonitor is an opt-in component: uncommenting it adds exactly the ServiceMonitor', () => {
    const component = documents(join(DIR, 'servicemonitor/kustomization.yaml'))[0] as Obj;
    assert.equal(component.kind, 'Component');
    assert.equal(component.apiVersion, 'kustomize.config.k8s.io/v1alpha1');
    const built = build(DIR, withCommentedComponents());
    assert.deepEqual(kinds(built), ['ConfigMap', 'Deployment', 'Service', 'Service', 'ServiceMonitor']);
  });

  it('every manifest under examples/kubernetes passes its Kubernetes JSON schema', async () => {
    const manifests = yamlFiles(DIR)
      .filter((f) => !isKustomization(f))
      .flatMap((file) => documents(file).map((doc) => ({ file, doc })));
    assert.deepEqual(kinds(manifests), ['ConfigMap', 'Deployment', 'Service', 'Service', 'ServiceMonitor']);
    for (const m of manifests) await validate(m);
    // Every manifest is reached by the default build or the opt-in component.
    const reached = new Set(build(DIR, withCommentedComponents()).map((m) => m.file));
    for (const m of manifests)
      assert.ok(reached.has(m.file), `${relative(ROOT, m.file)} is in no kustomization`);
  });

  it('the schema validation catches broken manifests (so a pass means something)', async () => {
    const deployment = build(DIR).find((m) => m.doc.kind === 'Deployment') as Manifest;
    const broken: Array<[string, (d: Obj) => void]> = [
      ['no selector', (d) => delete (d.spec as Obj).selector],
      [
        'a port as text',
        (d) => {
          const c = ((((d.spec as Obj).template as Obj).spec as Obj).containers as Obj[])[0] as Obj;
          (c.ports as Obj[])[0] = { name: 'http', containerPort: 'five thousand' };
        },
      ],
      ['replicas as text', (d) => ((d.spec as Obj).replicas = 'two')],
    ];
    for (const [what, breakIt] of broken) {
      const doc = structuredClone(deployment.doc);
      breakIt(doc);
      await assert.rejects(validate({ file: deployment.file, doc }), what);
    }
    const monitor = yamlFiles(DIR)
      .flatMap((file) => documents(file).map((doc) => ({ file, doc })))
      .find((m) => m.doc.kind === 'ServiceMonitor') as Manifest;
    const doc = structuredClone(monitor.doc);
    ((doc.spec as Obj).endpoints as Obj[])[0] = { port: 'admin', interval: 15 };
    await assert.rejects(validate({ file: monitor.file, doc }), 'ServiceMonitor interval as a number');
  });

  it("kubectl's kustomize builds the same, with and without the component (where kubectl is installed)", async (t) => {
    const kubectl = findExecutable(['/usr/bin/kubectl', '/usr/local/bin/kubectl']);
    if (kubectl === null) {
      t.skip(
        "kubectl not installed: the build above is checked by this test's own reading of kustomization.yaml",
      );
      return;
    }
    const render = async (dir: string) => {
      const { stdout } = await promisify(execFile)(kubectl, ['kustomize', dir], { timeout: 30_000 });
      return parseAllDocuments(stdout).map((d) => ({ file: dir, doc: d.toJS() as Obj }));
    };
    assert.deepEqual(kinds(await render(DIR)), kinds(build(DIR)));
    // An overlay of the user's own, outside this directory, opting in to the component.
    const overlay = mkdtempSync(join(tmpdir(), 'sc-kustomize-'));
    try {
      writeFileSync(
        join(overlay, 'kustomization.yaml'),
        [
          'apiVersion: kustomize.config.k8s.io/v1beta1',
          'kind: Kustomization',
          `resources: [${relative(overlay, DIR)}]`,
          `components: [${relative(overlay, join(DIR, 'servicemonitor'))}]`,
          '',
        ].join('\n'),
      );
      const rendered = await render(overlay);
      assert.deepEqual(kinds(rendered), kinds(build(DIR, withCommentedComponents())));
      for (const m of rendered) await validate({ file: join(dirname(DIR), 'rendered'), doc: m.doc });
    } finally {
      rmSync(overlay, { recursive: true, force: true });
    }
  });
});
