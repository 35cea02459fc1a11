/**
 * The path of a request target without its query, also for the absolute form (`GET http://host/v1/...`),
 * which Node and Fastify's router accept: a decision made on `request.url` alone would miss those.
 */
export function requestPath(url: string): string {
  if (url.startsWith('/')) return url.split('?')[0] ?? url;
  try {
    return new URL(url).pathname;
  } catch {
    return '/';
  }
}
