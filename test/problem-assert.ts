import assert from 'node:assert/strict';
import type { LightMyRequestResponse } from 'fastify';
import { errorCatalog, problemType, type ErrorCode } from '../src/errors.js';

/** Asserts an answer is RFC 9457 problem+json with the given code and its registered status. */
export function assertProblem(res: LightMyRequestResponse, code: ErrorCode): Record<string, unknown> {
  const body = res.json() as Record<string, unknown>;
  assert.equal(body.code, code, `expected ${code}, got ${res.statusCode} ${res.body}`);
  assert.equal(res.statusCode, errorCatalog[code].status);
  assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
  assert.equal(body.status, res.statusCode);
  assert.equal(body.type, problemType(code));
  assert.equal(typeof body.title, 'string');
  assert.equal(typeof body.detail, 'string');
  assert.equal(typeof body.requestId, 'string');
  return body;
}

/** Asserts a refused create body: 400 VALIDATION_ERROR (schema) or 422 INVALID_SETTINGS (fields that do not fit). */
export function assertInvalidBody(res: LightMyRequestResponse): Record<string, unknown> {
  const code = (res.json() as { code?: string }).code;
  assert.ok(code === 'VALIDATION_ERROR' || code === 'INVALID_SETTINGS', `expected VALIDATION_ERROR or INVALID_SETTINGS, got ${res.statusCode} ${res.body}`);
  return assertProblem(res, code);
}
