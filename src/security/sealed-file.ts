import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * AES-256-GCM sealing of a whole file: MAGIC | 12-byte IV | 16-byte tag | ciphertext. The magic is also
 * the additional authenticated data, so a file of another format or version (the token cache, the session
 * store) never decrypts by accident as the other.
 */
const TOKENS = Buffer.from('MSB-TOKENS-1\n');

export function seal(key: Buffer, plaintext: Buffer, magic: Buffer = TOKENS): Buffer {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(magic);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([magic, iv, cipher.getAuthTag(), body]);
}

/** Decrypts what seal() wrote; throws when the key is wrong or the file was altered. */
export function unseal(key: Buffer, sealed: Buffer, magic: Buffer = TOKENS): Buffer {
  if (sealed.length < magic.length + 28 || !sealed.subarray(0, magic.length).equals(magic)) {
    throw new Error(`not a sealed ${magic.toString('latin1').trim()} file`);
  }
  const iv = sealed.subarray(magic.length, magic.length + 12);
  const tag = sealed.subarray(magic.length + 12, magic.length + 28);
  const decipher = createDecipheriv('aes-256-gcm', key, iv);
  decipher.setAAD(magic);
  decipher.setAuthTag(tag);
  return Buffer.concat([decipher.update(sealed.subarray(magic.length + 28)), decipher.final()]);
}

/** The file's bytes, or undefined when it does not exist yet. */
export async function readIfExists(file: string): Promise<Buffer | undefined> {
  try {
    return await readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Replaces the file atomically (write a sibling, fsync, rename), readable by the owner only, so a crash
 * mid-write never leaves half a cache and other local users cannot read even the ciphertext.
 */
export async function writeAtomically(file: string, data: Buffer): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const handle = await open(temp, 'w', 0o600);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(temp, file);
  } catch (err) {
    await unlink(temp).catch(() => {});
    throw err;
  }
}
