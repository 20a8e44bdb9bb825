import { createServer } from 'node:net';

/**
 * Whether nothing listens on 127.0.0.1:`port` (we can bind it ourselves for a moment). Used before the
 * stack starts, so a port held by another stack is reported instead of being mistaken for ours.
 */
export function isPortFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * The first of `ports` that is in use, as an error message naming its variable, or null when all are free.
 * @param ports variable name (e.g. "EDGE_PORT") → port number.
 */
export async function portsInUse(ports: Record<string, number>): Promise<string | null> {
  for (const [name, port] of Object.entries(ports)) {
    if (!Number.isInteger(port) || port <= 0 || port > 65_535) return `${name} must be a TCP port number, got "${port}"`;
    if (!(await isPortFree(port))) {
      return `port ${port} (${name}) is already in use, probably by another \`npm start\`; stop it or choose another port, e.g. ${name}=${port + 10} npm start`;
    }
  }
  return null;
}
