// Writes openapi/openapi.json from the routes; with --check, fails when the committed file is stale.
import { readFile, writeFile } from 'node:fs/promises';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';

const target = new URL('../openapi/openapi.json', import.meta.url);
// the document does not depend on authentication settings; none avoids needing keys here
const app = await buildApp(loadConfig({ LOG_LEVEL: 'silent', MSB_AUTH: 'none' }));
await app.ready();
const fresh = `${JSON.stringify(app.swagger(), null, 2)}\n`;
await app.close();

if (process.argv.includes('--check')) {
  const committed = await readFile(target, 'utf8').catch(() => '');
  if (committed !== fresh) {
    process.stderr.write('openapi/openapi.json is stale: run `npm run openapi` and commit the result\n');
    process.exit(1);
  }
  process.stdout.write('openapi/openapi.json is up to date\n');
} else {
  await writeFile(target, fresh);
  process.stdout.write(`wrote ${target.pathname}\n`);
}
