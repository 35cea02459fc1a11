import { AjvCompiler } from '@fastify/ajv-compiler';
import type { FastifyServerOptions } from 'fastify';

type ValidatorFactory = NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>['buildValidator'] & {};

/**
 * Fastify's validators, with one difference: a query string, path parameters and headers are text, so their
 * values are coerced to the schema's types ("5" to 5, "true" to true); a JSON body is typed already and is
 * validated as sent, so `null` or `"yes"` where a boolean belongs is a 400, never a silent `false`.
 */
export function validatorFactory(): ValidatorFactory {
  const pool = AjvCompiler();
  return (externalSchemas, options) => {
    const coercing = pool(externalSchemas, options);
    const ajvOptions = (options ?? {}) as { customOptions?: object; mode?: never };
    const exact = pool(externalSchemas, { ...ajvOptions, customOptions: { ...ajvOptions.customOptions, coerceTypes: false } });
    return (route) => (route.httpPart === 'body' ? exact(route) : coercing(route));
  };
}
