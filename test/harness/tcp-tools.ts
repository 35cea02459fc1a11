// Misbehaving network peers for failure tests, all on 127.0.0.1:
// - a silent server that accepts connections and never says a word (greeting timeouts);
// - a TCP proxy in front of a real server that can go dark (half-open TCP, lost packets) or
//   reset every connection (server crash / RST).
import net from 'node:net';

export interface SilentServer {
  port: number;
  /** Connections accepted so far. */
  accepted(): number;
  close(): Promise<void>;
}

export interface TcpProxy {
  port: number;
  /** true: stop forwarding in both directions (data and FIN are dropped, sockets stay open). */
  blackhole(on: boolean): void;
  /** Destroys every client connection (with a TCP RST) and its upstream connection. */
  resetAll(): void;
  /** Number of client connections currently open through the proxy. */
  connections(): number;
  close(): Promise<void>;
}

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') reject(new Error('server has no TCP address'));
      else resolve(address.port);
    });
  });
}

function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** RST instead of FIN where Node supports it (>= 16.17), which is what a crashed peer looks like. */
function reset(socket: net.Socket): void {
  if (socket.destroyed) return;
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}

/** Accepts TCP connections and never sends anything. close() also drops accepted sockets. */
export async function startSilentServer(): Promise<SilentServer> {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer((socket) => {
    accepted += 1;
    sockets.add(socket);
    socket.on('error', () => { /* the client going away is expected */ });
    socket.on('close', () => sockets.delete(socket));
    // Read and discard whatever the client sends, so its writes never block.
    socket.resume();
  });
  const port = await listen(server);
  return {
    port,
    accepted: () => accepted,
    async close() {
      for (const socket of sockets) socket.destroy();
      await closeServer(server);
    },
  };
}

/** A TCP forwarder from 127.0.0.1:<port> to `target`, with failure switches. */
export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const pairs = new Map<net.Socket, net.Socket>(); // client -> upstream, until both are closed
  let dark = false;

  // Forward by hand rather than pipe(): in blackhole mode data must be dropped, not buffered,
  // and an end/close must not be passed on (the other side should see a silent, open socket).
  const forward = (from: net.Socket, to: net.Socket): void => {
    from.on('data', (chunk: Buffer) => {
      if (dark || to.destroyed) return;
      if (!to.write(chunk)) {
        from.pause();
        to.once('drain', () => from.resume());
      }
    });
    from.on('end', () => { if (!dark) to.end(); });
    // While dark, the other side is left hanging on purpose (half-open connection).
    from.on('close', () => { if (!dark) to.destroy(); });
    from.on('error', () => { /* e.g. ECONNREFUSED upstream: the other side sees a close */ });
  };

  const server = net.createServer((client) => {
    const upstream = net.connect({ host: target.host, port: target.port });
    pairs.set(client, upstream);
    forward(client, upstream);
    forward(upstream, client);
    const forget = (): void => { if (client.destroyed && upstream.destroyed) pairs.delete(client); };
    client.on('close', forget);
    upstream.on('close', forget);
  });
  const port = await listen(server);

  return {
    port,
    blackhole(on) {
      dark = on;
      if (!on) {
        // Connectivity is back: a peer that still talks to a side that went away meanwhile
        // would get a RST from the real network, so finish those half-dead pairs now.
        for (const [client, upstream] of pairs) {
          if (client.destroyed || upstream.destroyed) { reset(client); upstream.destroy(); }
        }
      }
    },
    resetAll() {
      for (const [client, upstream] of pairs) {
        reset(client);
        upstream.destroy();
      }
    },
    connections() {
      let open = 0;
      for (const client of pairs.keys()) if (!client.destroyed) open++;
      return open;
    },
    async close() {
      for (const [client, upstream] of pairs) {
        client.destroy();
        upstream.destroy();
      }
      await closeServer(server);
    },
  };
}
