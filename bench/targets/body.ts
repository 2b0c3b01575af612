// The one response body the origin serves: JSON, exactly BODY_BYTES long.

export const BODY_BYTES = 1024;

export function fixedJsonBody(bytes: number = BODY_BYTES): Buffer {
  const base = { id: 42, name: 'sidecache bench origin', tags: ['a', 'b', 'c'], pad: '' };
  base.pad = 'x'.repeat(bytes - Buffer.byteLength(JSON.stringify(base)));
  return Buffer.from(JSON.stringify(base));
}
