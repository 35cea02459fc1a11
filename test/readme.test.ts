import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { ConfigSchema } from '../src/config.js';
import { errorCatalog } from '../src/errors.js';

// the reference tables live in docs/ (linked from the README)
const errorsPage = await readFile(new URL('../docs/errors.md', import.meta.url), 'utf8');
const configPage = await readFile(new URL('../docs/configuration.md', import.meta.url), 'utf8');

test('the error table (docs/errors.md) lists every code with its status', () => {
  for (const [code, { status }] of Object.entries(errorCatalog)) {
    assert.match(errorsPage, new RegExp(`\\| \`${code}\` \\| ${status} \\|`), `docs/errors.md is missing the row for ${code} (${status})`);
  }
});

test('the configuration table (docs/configuration.md) lists every variable with its default', () => {
  for (const [name, schema] of Object.entries(ConfigSchema.properties)) {
    const fallback = String((schema as { default?: unknown }).default ?? '').replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    assert.match(configPage, new RegExp(`\\| \`${name}\` \\| ?${fallback} ?\\|`), `docs/configuration.md is missing ${name} (default ${fallback})`);
  }
});

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
function anchorOf(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}_\- ]/gu, '').replace(/ /g, '-');
}

function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    const heading = fenced ? null : /^#{1,6} (.*)$/.exec(line);
    if (heading) anchors.add(anchorOf(heading[1]!));
  }
  return anchors;
}

test('every relative link of the README and docs/ reaches a file, and its #anchor a heading there', async () => {
  const root = new URL('../', import.meta.url);
  const pages = ['README.md', ...(await readdir(new URL('docs/', root))).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
  const broken: string[] = [];
  for (const page of pages) {
    const text = await readFile(new URL(page, root), 'utf8');
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(target!)) continue; // https:, mailto:
      const [path, hash] = target!.split('#') as [string, string | undefined];
      const file = path === '' ? new URL(page, root) : new URL(path, new URL(page, root));
      let content: string;
      try {
        content = await readFile(file, 'utf8');
      } catch {
        broken.push(`${page}: ${target} (no such file)`);
        continue;
      }
      if (hash !== undefined && file.pathname.endsWith('.md') && !anchorsOf(content).has(hash)) broken.push(`${page}: ${target} (no such heading)`);
    }
  }
  assert.deepEqual(broken, []);
});
