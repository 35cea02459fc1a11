import { readFile, realpath } from 'node:fs/promises';
import path from 'node:path';
import { AppError } from '../errors.js';
import { Secret } from '../domain/secret.js';
import type { Principal } from './api-keys.js';

/** A reference to a secret held by the server, accepted wherever a credential field takes a string. */
export interface SecretRef {
  secret: string;
}

export const SECRET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** A reference is an object with `secret` and nothing else (the schema's SecretRef), so `{ url, secret }` is not one. */
export function isSecretRef(value: unknown): value is SecretRef {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && typeof (value as SecretRef).secret === 'string' && Object.keys(value).length === 1;
}

function globToRegExp(glob: string): RegExp {
  return new RegExp(`^${glob.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
}

/**
 * Secrets held by the server: files in a directory (the Docker/Kubernetes secrets convention) and
 * environment variables MSB_SECRET_<NAME>. Which principal may read which secret is configured with
 * `principal=glob|glob;principal2=*`; nothing is readable unless granted.
 */
export class SecretStore {
  readonly #dir: string | undefined;
  readonly #env: Record<string, string | undefined>;
  readonly #grants = new Map<string, RegExp[]>();
  readonly #openAccess: boolean;

  constructor(options: { dir: string; access: string; env: Record<string, string | undefined>; openAccess: boolean }) {
    this.#dir = options.dir ? path.resolve(options.dir) : undefined;
    this.#env = options.env;
    this.#openAccess = options.openAccess;
    for (const part of options.access.split(';').map((s) => s.trim()).filter(Boolean)) {
      const [who, globs = ''] = part.split('=');
      this.#grants.set(who!.trim(), globs.split('|').map((g) => g.trim()).filter(Boolean).map(globToRegExp));
    }
  }

  /** Reads a secret for a principal. Not found and not allowed give the same answer, so names cannot be probed. */
  async resolve(ref: SecretRef, principal: Principal, field: string): Promise<Secret> {
    const name = ref.secret;
    const unavailable = () =>
      new AppError('SECRET_UNAVAILABLE', `${field}: secret "${SECRET_NAME.test(name) ? name : '(invalid name)'}" does not exist or principal "${principal.name}" may not read it`);
    // the name pattern has no "/" and no leading ".": no path can leave the directory
    if (!SECRET_NAME.test(name) || !this.#allowed(principal.name, name)) throw unavailable();
    const value = (await this.#fromDir(name)) ?? this.#env[`MSB_SECRET_${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`];
    if (value === undefined || value === '') throw unavailable();
    return new Secret(value);
  }

  #allowed(principal: string, name: string): boolean {
    if (this.#openAccess) return true;
    return [...(this.#grants.get(principal) ?? []), ...(this.#grants.get('*') ?? [])].some((re) => re.test(name));
  }

  async #fromDir(name: string): Promise<string | undefined> {
    if (!this.#dir) return undefined;
    try {
      const file = await realpath(path.join(this.#dir, name));
      // a symlink inside the directory must not lead out of it
      if (path.dirname(file) !== (await realpath(this.#dir))) return undefined;
      // Docker and Kubernetes secret files often end with a newline that is not part of the secret
      return (await readFile(file, 'utf8')).replace(/\r?\n$/, '');
    } catch {
      return undefined;
    }
  }
}
