/**
 * What the stages tell their observers (metrics, logs) and never steer by: the events and the
 * observer interfaces. A leaf module: stages implement against it and metrics/ reads it, so metrics/
 * imports no stage and no stage imports metrics/.
 */

/** One connection attempt of the upstream pools to an origin, with its DNS, connect and TLS times. */
export interface ConnectEvent {
  readonly origin: string;
  readonly ok: boolean;
  readonly dnsMs: number | undefined;
  readonly connectMs: number | undefined;
  readonly tlsMs: number | undefined;
  readonly errorCode?: string;
}
