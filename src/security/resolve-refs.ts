import type { Principal } from './api-keys.js';
import { isSecretRef, type SecretStore } from './secret-store.js';
import type { ReferencedValue } from './session-guard.js';

export interface ResolvedBody<T> {
  body: T;
  /** Field -> secret name, for the fields that were given as references; a nested one by its dotted path ("smtp.username"). */
  refs: Map<string, string>;
  /** Every value that came by reference, at any depth, with its name: shown as `secret:<name>` wherever a caller reads it. */
  referenced: ReferencedValue[];
}

/**
 * Replaces every `{ "secret": "name" }` in a create body by the secret's value, read for `principal`.
 * Kinds then see plain values and wrap them in `Secret` as usual.
 */
export async function resolveSecretRefs<T>(body: T, principal: Principal, store: SecretStore): Promise<ResolvedBody<T>> {
  const refs = new Map<string, string>();
  const referenced: ReferencedValue[] = [];
  const walk = async (value: unknown, path: string[]): Promise<unknown> => {
    if (isSecretRef(value)) {
      refs.set(path.join('.'), value.secret);
      const resolved = (await store.resolve(value, principal, `/${path.join('/')}`)).reveal();
      referenced.push({ name: value.secret, value: resolved });
      return resolved;
    }
    if (Array.isArray(value)) return Promise.all(value.map((v, i) => walk(v, [...path, String(i)])));
    if (value && typeof value === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) out[k] = await walk(v, [...path, k]);
      return out;
    }
    return value;
  };
  return { body: (await walk(body, [])) as T, refs, referenced };
}

/** Shows referenced top-level fields as `secret:<name>` in a session view, never their value. */
export function showRefs<V extends Record<string, unknown>>(view: V, refs: Map<string, string>): V {
  if (refs.size === 0) return view;
  const out: Record<string, unknown> = { ...view };
  for (const [field, name] of refs) if (field in out) out[field] = `secret:${name}`;
  return out as V;
}
