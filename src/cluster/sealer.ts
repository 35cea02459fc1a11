import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/**
 * AES-256-GCM for single values that leave the process (Redis): base64 of 12-byte IV | 16-byte tag |
 * ciphertext. The value's context (which key, which session) is the additional authenticated data, so a
 * value copied to another key or session does not decrypt there: whoever can write to Redis cannot move
 * one session's secrets into another's record.
 */
export class Sealer {
  readonly #key: Buffer;

  constructor(key: Buffer) {
    if (key.length !== 32) throw new Error('the sealing key must be 32 bytes');
    this.#key = key;
  }

  seal(context: string, plaintext: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    cipher.setAAD(Buffer.from(context, 'utf8'));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64');
  }

  /** The plaintext; throws when the key is wrong, the value was altered or belongs to another context. */
  unseal(context: string, sealed: string): string {
    const raw = Buffer.from(sealed, 'base64');
    if (raw.length < 28) throw new Error('not a sealed value');
    const decipher = createDecipheriv('aes-256-gcm', this.#key, raw.subarray(0, 12));
    decipher.setAAD(Buffer.from(context, 'utf8'));
    decipher.setAuthTag(raw.subarray(12, 28));
    return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
  }

  sealJson(context: string, value: unknown): string {
    return this.seal(context, JSON.stringify(value));
  }

  unsealJson<T>(context: string, sealed: string): T {
    return JSON.parse(this.unseal(context, sealed)) as T;
  }
}
