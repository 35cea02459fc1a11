// The baseline of the inspect-throughput benchmark: a bare Fastify 5 route GET /v1/sessions/:name that
// returns a JSON object of the same size as the service's inspect answer (read from $BODY_FILE, a real
// inspect answer), with Fastify's defaults (no logger, no schema, no hooks). Plain JavaScript.
import { readFileSync } from 'node:fs';
import Fastify from 'fastify';

const body = JSON.parse(readFileSync(process.env.BODY_FILE, 'utf8'));
const app = Fastify({ logger: false });
app.get('/v1/sessions/:name', async () => body);
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
process.stdout.write('listening\n');
const stop = () => app.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
