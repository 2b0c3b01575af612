/**
 * The diagnostics channels of tunnel/ (channels.ts at the root names them): tunnels and upgraded
 * connections that closed, and the interception TLS events (handshakes that failed or were
 * refused, leaf certificates minted, the CA loaded). setup.ts reports to this publisher.
 */
import { channel, type Instance } from '../channels.js';
import type { HandshakeFailure, HandshakeRefusal, TunnelReport } from '../observers.js';

export const tunnelChannels = Object.freeze({
  end: channel('sidecache:tunnel:end'),
  handshakeFailure: channel('sidecache:tls:handshake-failure'),
  handshakeRefused: channel('sidecache:tls:handshake-refused'),
  leafIssued: channel('sidecache:tls:leaf-issued'),
  caLoaded: channel('sidecache:tls:ca-loaded'),
});

export interface TunnelEvents {
  onTunnelEnd(report: TunnelReport): void;
  onHandshakeFailure(kind: HandshakeFailure, authority: string, code: string): void;
  onRefused(reason: HandshakeRefusal, authority: string, servername: string): void;
  onLeafIssued(): void;
  onCaLoaded(notAfterMs: number): void;
}

/** Every tunnel and interception TLS event of `instance`, on its channel. */
export function publishTunnel(instance: Instance | undefined): TunnelEvents {
  const c = tunnelChannels;
  const bare = Object.freeze({ instance, event: undefined });
  return {
    onTunnelEnd(report) {
      if (c.end.hasSubscribers) c.end.publish({ instance, event: report });
    },
    onHandshakeFailure(kind, authority, code) {
      if (c.handshakeFailure.hasSubscribers) {
        c.handshakeFailure.publish({ instance, event: { kind, authority, code } });
      }
    },
    onRefused(reason, authority, servername) {
      if (c.handshakeRefused.hasSubscribers) {
        c.handshakeRefused.publish({ instance, event: { reason, authority, servername } });
      }
    },
    onLeafIssued() {
      if (c.leafIssued.hasSubscribers) c.leafIssued.publish(bare);
    },
    onCaLoaded(notAfterMs) {
      if (c.caLoaded.hasSubscribers) c.caLoaded.publish({ instance, event: { notAfterMs } });
    },
  };
}
