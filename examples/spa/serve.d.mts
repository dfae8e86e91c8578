import type { Server } from 'node:http'
/** Serves the example SPA and the client kit on 127.0.0.1:`port`, pointed at `apiUrl`. */
export function serveSpa (options: { apiUrl: string, port?: number }): Promise<Server>
