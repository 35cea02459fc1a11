import { decodeId } from '../../domain/mail.js';

/**
 * A Graph id from one of our ids (base64url of Graph's immutable id); undefined when it cannot be one,
 * and then nothing is sent to Graph.
 */
export function graphId(id: string): string | undefined {
  const decoded = decodeId(id);
  return decoded && /^[A-Za-z0-9_=+/-]{1,1024}$/.test(decoded) ? decoded : undefined;
}
