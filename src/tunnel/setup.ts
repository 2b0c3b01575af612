/**
 * Wires CONNECT, interception and upgrades for server.ts: the CA (loaded or made at start when
 * `intercept` names any host), the leaf issuer, the tunnels and the upgrade relay, as the `RawParts`
 * CONNECT and Upgrade exchanges need (tunnel/raw.ts). Nothing here runs a request. What they report
 * (tunnels closed, handshakes failed or refused, leaves minted, the CA) is published on the
 * `sidecache:tunnel:end` and `sidecache:tls:*` channels (channels.ts) for metrics/ and the log.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Instance } from '../channels.js';
import { compileInterceptMatcher, type Runtime } from '../config/runtime.js';
import type { RuntimeRef } from '../config/runtime-ref.js';
import type { Exchange, Next, RawParts, Reply } from '../exchange.js';
import type { ConnectLookup } from '../guard/egress-policy.js';
import type { Logger } from '../log.js';
import type { CaOptions, CertificateAuthority } from '../tls/ca.js';
import { CA_CERT_FILE } from '../tls/ca-files.js';
import type { LeafIssuer } from '../tls/leaf-certs.js';
import { describeConstraints, outsideConstraints } from '../tls/name-constraints.js';
import { createUpgradeRelay, type UpgradeRelayOptions } from '../upstream/upgrade-relay.js';
import { publishTunnel } from './channels.js';
import { createTunnels, type DecryptedSink } from './tunnels.js';

export interface TunnelSetupDeps {
  readonly logger: Logger;
  /** The instance the published events belong to. */
  readonly instance?: Instance;
  /** The guard stage; CONNECT and Upgrade exchanges are admitted by it. */
  readonly guard: (next: Next) => Next;
  readonly via: string | null;
  readonly decrypted: DecryptedSink;
  /** The egress-checked resolver, by port, that the upstream pools use. */
  readonly lookupTo?: ConnectLookup;
  /** Tracing's hook on the trace context sent upstream (tracing/); absent when tracing is off. */
  readonly traceContext?: UpgradeRelayOptions['traceContext'];
}

export interface TunnelSetup {
  readonly raw: RawParts;
  /** The CA certificate (PEM) for /ca.pem, or null when there is none yet. */
  caCertPem(): Promise<string | null>;
  /**
   * Mints (and caches) the leaf certificates of the intercepted ones among `hosts` ahead of the
   * first CONNECT (keep-warm's warm start); never rejects.
   */
  prepareLeaves(hosts: readonly string[]): Promise<void>;
}

/** The CA directory, absolute (relative paths are taken from the working directory). */
export function caDirOf(runtime: Runtime): string {
  return resolve(runtime.config.tls.caDir);
}

/** How a new CA is made from this config: `tls.caValidityDays`, and `tls.caNameConstraints`. */
export function caOptionsOf(runtime: Runtime): CaOptions {
  const { tls, intercept } = runtime.config;
  return { validityDays: tls.caValidityDays, nameConstraints: tls.caNameConstraints ? intercept : null };
}

/**
 * What is wrong between the CA and the config, one sentence each: hosts in `intercept` the CA's
 * Name Constraints do not cover (clients reject their leaves), a constrained CA asked for but an
 * unconstrained one in place, an expired CA. For the start log and `check-config`.
 */
export function caWarnings(
  runtime: Runtime,
  ca: { certPath: string; notAfter: number; constraints: CertificateAuthority['constraints'] },
  now = Date.now(),
): string[] {
  const { intercept, tls } = runtime.config;
  const warnings: string[] = [];
  if (ca.constraints) {
    const outside = outsideConstraints(ca.constraints, intercept);
    if (outside.length > 0) {
      warnings.push(
        `intercept names ${outside.join(', ')}, outside the Name Constraints of the CA in ${ca.certPath} ` +
          `(${describeConstraints(ca.constraints)}): clients will reject those leaves; ` +
          'make a new CA (empty tls.caDir) and have clients trust it',
      );
    }
  } else if (tls.caNameConstraints) {
    warnings.push(
      `tls.caNameConstraints is on but the CA in ${ca.certPath} has no Name Constraints (it was made ` +
        'before); it can sign any name. Empty tls.caDir to make a constrained CA, and have clients trust it',
    );
  }
  if (ca.notAfter <= now) {
    warnings.push(
      `the CA in ${ca.certPath} expired on ${new Date(ca.notAfter).toISOString()}: clients reject every ` +
        'intercepted leaf; empty tls.caDir to make a new CA',
    );
  }
  return warnings;
}

const ADMITTED: Reply = Object.freeze({ status: 200, headers: {}, body: null, source: 'synth' });

/**
 * The CA, the tunnel idle timeout and the upgrade relay's CA file are bound at start; the
 * intercept list and CONNECT ports follow the current runtime (config reload).
 */
export async function setUpTunnels(ref: RuntimeRef, deps: TunnelSetupDeps): Promise<TunnelSetup> {
  const runtime = ref.current();
  const { config } = runtime;
  const events = publishTunnel(deps.instance);
  const caDir = caDirOf(runtime);
  let ca: CertificateAuthority | null = null;
  let leaves: LeafIssuer | null = null;
  if (config.intercept.length > 0) {
    // The X.509 code is loaded only when something is intercepted (idle memory).
    const [{ loadOrCreateCa }, { createLeafIssuer }] = await Promise.all([
      import('../tls/ca.js'),
      import('../tls/leaf-certs.js'),
    ]);
    ca = await loadOrCreateCa(caDir, caOptionsOf(runtime));
    events.onCaLoaded(ca.notAfter);
    deps.logger.info(
      {
        caCert: ca.certPath,
        created: ca.created,
        intercept: config.intercept,
        caExpires: new Date(ca.notAfter).toISOString(),
        caNameConstraints: ca.constraints ? describeConstraints(ca.constraints) : null,
      },
      ca.created ? 'interception CA created; clients must trust its certificate' : 'interception CA loaded',
    );
    for (const warning of caWarnings(runtime, ca)) deps.logger.warn({ caCert: ca.certPath }, warning);
    const interceptFor = ref.derive((rt) => compileInterceptMatcher(rt.config.intercept));
    leaves = createLeafIssuer(
      ca,
      { validityMs: config.tls.leafValidityMs, cacheEntries: config.tls.leafCacheEntries },
      {
        onIssued: () => events.onLeafIssued(),
        // Only hosts the current intercept list names (it follows a config reload).
        permits: (host) => interceptFor().host(host),
      },
    );
  }
  const tunnelsFor = ref.derive((rt) =>
    createTunnels(rt, {
      leaves,
      decrypted: deps.decrypted,
      ...(deps.lookupTo ? { lookupTo: deps.lookupTo } : {}),
      onHandshakeFailure: events.onHandshakeFailure,
      onRefused: events.onRefused,
    }),
  );
  const upgrade = createUpgradeRelay(
    {
      // Read per upgrade: the forward-proxy defaults follow a config reload.
      get defaults() {
        return ref.current().config.upstream;
      },
      via: deps.via,
      forwardedHeaders: config.proxy.forwardedHeaders,
      ...(deps.traceContext ? { traceContext: deps.traceContext } : {}),
    },
    deps.lookupTo ? { lookupTo: deps.lookupTo } : {},
  );
  const admitted = deps.guard(async () => ADMITTED);
  const raw: RawParts = {
    admit: (ex: Exchange) => admitted(ex),
    intercepts: (host, port) => tunnelsFor().intercepts(host, port),
    checkConnect: (ex) => tunnelsFor().checkConnect(ex),
    openTunnel: (ex, socket, head, established, closing) =>
      tunnelsFor().openTunnel(ex, socket, head, established, closing),
    upgrade,
    idleTimeoutMs: config.tunnel.idleTimeoutMs,
    onTunnelEnd: events.onTunnelEnd,
  };
  return {
    raw,
    async prepareLeaves(hosts) {
      if (leaves === null) return;
      const intercepted = hosts.filter((h) => tunnelsFor().intercepts(h, null));
      await Promise.allSettled(intercepted.map((h) => leaves.leafFor(h)));
    },
    async caCertPem() {
      if (ca) return ca.certPem;
      try {
        return await readFile(resolve(caDir, CA_CERT_FILE), 'utf8');
      } catch {
        return null;
      }
    },
  };
}
