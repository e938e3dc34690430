// TypeScript declarations for herald.js, the Herald browser and Node client.

export type Transport = "websocket" | "sse";
export type State = "connecting" | "connected" | "disconnected";

/** Credentials for `ident`: a JWT minted by the backend, or a configured user. */
export type Auth = { token: string } | { username: string; password: string };

/** Which path reached this connection: the user targets and channels the event was sent to. */
export interface Via {
  users: string[];
  channels: string[];
}

/** Second argument of every event handler. */
export interface EventMeta {
  /** The event id the server assigned (the one `POST /v1/notify` answered). */
  id: string;
  event: string;
  via: Via;
  /** Set when another client published the event (`publish`): who sent it. */
  from?: { user: string };
}

/** `resubscribed`: a channel joined again after a reconnect, and whether what it missed was replayed. */
export interface Resubscribed {
  channel: string;
  /** true: every event sent meanwhile follows (or already came); false: reload this channel's state. */
  recovered: boolean;
}

/** `recovered`: once per reconnect, after ident and every join were restored. */
export interface Recovered {
  /** true when the user's stream and every channel recovered: nothing was lost. */
  recovered: boolean;
  /** The user's stream (undefined when the client had not identified). */
  user?: boolean;
  /** Per channel. */
  channels: Record<string, boolean>;
}

/** A server reply frame: `ok` (with `user` after ident) or `pong`. */
export interface ReplyFrame {
  type: "ok" | "pong";
  id: number;
  user?: string;
  /** On ident and join: the newest position of the user's or channel's stream (opaque). */
  pos?: string;
  /** When the request carried `since`: whether every event after it follows. */
  recovered?: boolean;
  [key: string]: unknown;
}

/**
 * Rejection of a request. `code` is the server's (`bad_request`, `unauthorized`, `forbidden`,
 * `not_found`, `too_large`, `rate_limited`, `unavailable`, `internal`), an RPC backend's
 * application code (`app_1000` to `app_1999`), or the client's own: `timeout` (no reply in time),
 * `disconnected` (a publish or RPC whose connection was lost before its answer; internal
 * requests), `closed` (after `close()`), `disconnected_by_backend` (an `error` event: the
 * backend ended the user's connections, close code 4001; the client does not reconnect).
 */
export interface HeraldError extends Error {
  code: string;
  /** The server's `error` frame, when the server sent one. */
  frame?: { type: "error"; id?: number; code: string; message: string };
}

export interface BackoffOptions {
  /** First ceiling in ms (default 500). */
  base?: number;
  /** Growth of the ceiling per attempt (default 2). */
  factor?: number;
  /** Largest ceiling in ms (default 30000). */
  cap?: number;
  /** Source of randomness in [0, 1) (default Math.random). */
  random?: () => number;
}

export interface HeraldOptions {
  /** Transports allowed; WebSocket is preferred when both are listed. Default ["websocket", "sse"]. */
  transports?: Transport[];
  /** Default: ws(s)://host/ws derived from the base URL. */
  wsUrl?: string;
  /** Default: http(s)://host/sse derived from the base URL. */
  sseUrl?: string;
  /** Reply timeout of a request and the wait for `welcome`, in ms (default 10000). */
  timeoutMs?: number;
  /** Interval of liveness pings while connected, in ms; 0 disables them (default 25000). */
  pingMs?: number;
  /** Consecutive failed WebSocket attempts before falling back to SSE (default 2). */
  fallbackAfter?: number;
  /** In fallback, every Nth attempt tries the WebSocket again; 0 never (default 5). */
  wsRetryEvery?: number;
  /** While connected over SSE, probe a WebSocket after this many ms and move over if it works; 0 never (default 120000). */
  wsProbeMs?: number;
  /** Reconnection schedule (full jitter). */
  backoff?: Omit<BackoffOptions, "random">;
  /** Source of randomness for the jitter (default Math.random). */
  random?: () => number;
  /** Injected implementations, for tests and for Node (default: the globals). */
  WebSocket?: unknown;
  EventSource?: unknown;
  fetch?: typeof fetch;
}

export type EventHandler = (payload: any, meta: EventMeta) => void;

export class Herald {
  /** @param url the gateway's http(s) base URL (default: the page's origin). */
  constructor(url?: string, options?: HeraldOptions);

  readonly state: State;
  /** The transport in use while connected, otherwise null. */
  readonly transport: Transport | null;
  /** The server's id of the current connection, while connected. */
  readonly conn: string | null;
  /** The user of the last successful ident. */
  readonly user: string | null;
  readonly wsUrl: string;
  readonly sseUrl: string;
  readonly transports: Transport[];

  /** Identify; a function is called again on every reconnect, so it can mint a fresh token. */
  ident(auth: Auth | (() => Auth | Promise<Auth>)): Promise<ReplyFrame>;
  /**
   * Join a channel; it is joined again after every reconnect until `leave`, asking for the
   * events missed meanwhile (see the `resubscribed` and `recovered` events).
   */
  join(channel: string): Promise<ReplyFrame>;
  leave(channel: string): Promise<ReplyFrame>;
  /**
   * Send an event to the members of a channel this client joined (allowed by the token's
   * `publish` claim or the server's `client_publish`); resolves once a dispatcher accepted it.
   * Other members receive it with `meta.from`; this connection does not.
   */
  publish(channel: string, event: string, payload?: unknown): Promise<{ event_id: string }>;
  /** Call a backend method; resolves with its result, rejects with a coded HeraldError. */
  rpc<T = unknown>(method: string, data?: unknown, options?: { timeoutMs?: number }): Promise<T>;
  /** Round trip to the server in ms. */
  ping(): Promise<number>;

  on(name: "state", fn: (state: State) => void): () => void;
  on(name: "error", fn: (error: HeraldError) => void): () => void;
  /** After a reconnect, per channel joined again: whether the events it missed were replayed. */
  on(name: "resubscribed", fn: (info: Resubscribed) => void): () => void;
  /** After a reconnect, once restored: whether nothing was lost; reload state where it was. */
  on(name: "recovered", fn: (info: Recovered) => void): () => void;
  /** A server event by name, or "*" for every server event. */
  on(name: string, fn: EventHandler): () => void;
  off(name: string, fn?: (...args: any[]) => void): void;

  /** Close for good: no reconnect; pending requests reject with code "closed". */
  close(): void;
}

/** Delay in ms before reconnect attempt `attempt` (0-based): full jitter, uniform in [0, min(cap, base * factor^attempt)). */
export function backoffDelay(attempt: number, options?: BackoffOptions): number;

/** The transport the next connection attempt uses, given the failures so far. */
export function chooseTransport(
  state: { transports: Transport[]; wsFailures: number; fallbackAttempts: number },
  options?: { fallbackAfter?: number; wsRetryEvery?: number },
): Transport;

export default Herald;
