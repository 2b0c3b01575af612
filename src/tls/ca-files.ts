/**
 * The CA's file names in `tls.caDir`, apart from ca.ts so that reading them (GET /ca.pem) does not
 * load the X.509 code, which is loaded only when interception is configured.
 */
export const CA_CERT_FILE = 'ca.pem';
export const CA_KEY_FILE = 'ca-key.pem';
