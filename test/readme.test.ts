import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { ConfigSchema } from '../src/config.js';
import { errorCatalog } from '../src/errors.js';

const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');

test('the README error table lists every code with its status', () => {
  for (const [code, { status }] of Object.entries(errorCatalog)) {
    assert.match(readme, new RegExp(`\\| \`${code}\` \\| ${status} \\|`), `README is missing the row for ${code} (${status})`);
  }
});

test('the README configuration table lists every variable with its default', () => {
  for (const [name, schema] of Object.entries(ConfigSchema.properties)) {
    const fallback = String((schema as { default?: unknown }).default ?? '').replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    assert.match(readme, new RegExp(`\\| \`${name}\` \\| ?${fallback} ?\\|`), `README is missing ${name} (default ${fallback})`);
  }
});
