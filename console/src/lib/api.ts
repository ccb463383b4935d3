// A thin client for obpilot's API: OCP's envelope, the console session (cookie) and its
// CSRF header on writes; an expired session sends the user to the login page.

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly traceId: string | undefined;

  constructor(status: number, code: string, message: string, traceId?: string) {
    super(message);
    this.status = status;
    this.code = code;
    this.traceId = traceId;
  }
}

interface Envelope<T> {
  data?: T;
  successful: boolean;
  status: number;
  traceId?: string;
  error?: { code: string; message: string };
}

export function cookie(name: string, source: string = document.cookie): string | undefined {
  for (const part of source.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return undefined;
}

type Unauthorized = () => void;
let onUnauthorized: Unauthorized = () => undefined;

export function setUnauthorizedHandler(handler: Unauthorized): void {
  onUnauthorized = handler;
}

export async function api<T>(
  path: string,
  options: { method?: string; body?: unknown; signal?: AbortSignal; quiet401?: boolean } = {},
): Promise<T> {
  const method = options.method ?? "GET";
  const headers: Record<string, string> = { Accept: "application/json" };
  if (method !== "GET") {
    headers["X-CSRF-Token"] = cookie("obpilot_csrf") ?? "";
    headers["Content-Type"] = "application/json";
  }
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers,
      credentials: "same-origin",
      body: options.body === undefined ? (method === "GET" ? undefined : "{}") : JSON.stringify(options.body),
      signal: options.signal,
    });
  } catch (error) {
    if (error instanceof DOMException && error.name === "AbortError") throw error;
    throw new ApiError(0, "NETWORK", "obpilot did not answer: check that it is running");
  }
  let envelope: Envelope<T> | undefined;
  try {
    envelope = (await response.json()) as Envelope<T>;
  } catch {
    envelope = undefined;
  }
  if (!response.ok || !envelope || !envelope.successful) {
    const code = envelope?.error?.code ?? `HTTP${response.status}`;
    const message = envelope?.error?.message ?? response.statusText;
    const error = new ApiError(response.status, code, message, envelope?.traceId);
    if (response.status === 401 && !options.quiet401) onUnauthorized();
    throw error;
  }
  return envelope.data as T;
}

export function describe(error: unknown): string {
  if (error instanceof ApiError) return `${error.message} (${error.code})`;
  if (error instanceof Error) return error.message;
  return String(error);
}
