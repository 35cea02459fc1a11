import { Type, type TSchema } from 'typebox';
import { AppError } from '../errors.js';
import type { Capability } from '../domain/mail.js';
import { ref, shared } from '../schemas/shared.js';
import type { SessionKind } from './kind.js';
import { ewsKind } from './ews.js';
import { mailServerKind } from './mail-server.js';
import { outlookKind } from './outlook.js';

/** Every session kind the service knows. A new protocol is one more entry here. */
const kinds: readonly SessionKind[] = [mailServerKind, ewsKind, outlookKind];

export const sessionTypes: readonly string[] = kinds.flatMap((k) => k.types);

/** `imap` -> `CreateImapSession`: the name of a kind's create body in the document and in generated clients. */
function bodyName(body: TSchema): string {
  const type = (body as { properties?: { type?: { const?: unknown } } }).properties?.type?.const;
  if (typeof type !== 'string') throw new Error('a create body needs a literal `type`');
  return `Create${type[0]!.toUpperCase()}${type.slice(1)}Session`;
}

/** Each kind's create body as a shared schema (components/schemas/Create...Session). */
const createBodies = kinds.flatMap((k) => k.bodies).map((body) => shared(bodyName(body), body));

/**
 * The create body: one object discriminated by `type`. Written as oneOf + discriminator (rather than
 * TypeBox's anyOf) so that a validation error speaks about the branch the caller chose. The document adds
 * discriminator.mapping (src/plugins/openapi.ts): Ajv refuses a mapping, it finds the branches by their `type`.
 */
export const CreateSessionBody = Type.Unsafe<{ name: string; type: string } & Record<string, unknown>>({
  type: 'object',
  required: ['type'],
  oneOf: createBodies.map((body) => ref(body)),
  discriminator: { propertyName: 'type' },
  description: `One object discriminated by \`type\` (${sessionTypes.join(', ')}).`,
});

/** The session types that can do `capability`, for OPERATION_NOT_SUPPORTED answers. */
export function supportedBy(capability: Capability): readonly string[] {
  return kinds.flatMap((k) => k.types.filter((t) => k.capabilities[t]?.includes(capability)));
}

export function kindFor(type: string): SessionKind {
  const kind = kinds.find((k) => k.types.includes(type));
  if (!kind) throw new AppError('VALIDATION_ERROR', `unknown session type "${type}"`);
  return kind;
}
