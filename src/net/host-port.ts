/** A DNS name or IPv4 address with an optional port: an authority, EWS, Graph or mail host (config and bodies). */
export const HOST_PORT_PATTERN = '^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?$';

/** A comma-separated list of HOST_PORT_PATTERN entries (may be empty). */
export const HOST_PORT_LIST_PATTERN = `^(${HOST_PORT_PATTERN.slice(1, -1)})?(,\\s*${HOST_PORT_PATTERN.slice(1, -1)})*$`;

/**
 * A host[:port] that parses back to itself as a URL authority: the pattern lets through a port over 65535
 * or a default port (":443"), which MSAL would refuse later, as a 502 instead of a 400.
 */
export function isPlainHost(hostPort: string): boolean {
  try {
    const u = new URL(`https://${hostPort}`);
    return u.host === hostPort && u.pathname === '/' && !u.username && !u.password;
  } catch {
    return false;
  }
}
