// A thin client for obpilot's API: OCP's envelope, the console session (cookie) and its
// CSRF header on writes; an expired session sends the user to the login page.

import type { SubError } from "./types";

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly traceId: string | undefined;
  /** The findings about single fields of the request (a form shows each by its input). */
  readonly subErrors: SubError[];

  constructor(status: number, code: string, message: string, traceId?: string, subErrors: SubError[] = []) {
    super(message);
    this.status = status;
    this.code = code;
    this.traceId = traceId;
    this.subErrors = subErrors;
  }
}

interface Envelope<T> {
  data?: T;
  successful: boolean;
  status: number;
  traceId?: string;
  error?: { code: string; message: string; subErrors?: SubError[] | null };
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
  return settle(response.status, response.ok, response.statusText, envelope, options.quiet401);
}

function settle<T>(status: number, ok: boolean, statusText: string, envelope: Envelope<T> | undefined, quiet401?: boolean): T {
  if (!ok || !envelope || !envelope.successful) {
    const code = envelope?.error?.code ?? `HTTP${status}`;
    const message = envelope?.error?.message ?? statusText;
    const subErrors = Array.isArray(envelope?.error?.subErrors) ? envelope.error.subErrors : [];
    const error = new ApiError(status, code, message, envelope?.traceId, subErrors);
    if (status === 401 && !quiet401) onUnauthorized();
    throw error;
  }
  return envelope.data as T;
}

/** A multipart POST of one file (field `file`) with its upload progress: fetch cannot
 * report the progress of a request body, XMLHttpRequest can. The CSRF header as on writes. */
export function upload<T>(
  path: string,
  file: Blob,
  options: { onProgress?: (sent: number, total: number) => void; signal?: AbortSignal; fileName?: string } = {},
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("POST", path);
    request.withCredentials = true;
    request.setRequestHeader("Accept", "application/json");
    request.setRequestHeader("X-CSRF-Token", cookie("obpilot_csrf") ?? "");
    request.upload.onprogress = (event) => {
      if (event.lengthComputable) options.onProgress?.(event.loaded, event.total);
    };
    request.onerror = () => reject(new ApiError(0, "NETWORK", "obpilot did not answer: check that it is running"));
    request.onabort = () => reject(new DOMException("The upload was cancelled", "AbortError"));
    request.onload = () => {
      let envelope: Envelope<T> | undefined;
      try {
        envelope = JSON.parse(request.responseText) as Envelope<T>;
      } catch {
        envelope = undefined;
      }
      try {
        resolve(settle(request.status, request.status >= 200 && request.status < 300, request.statusText, envelope));
      } catch (error) {
        reject(error);
      }
    };
    options.signal?.addEventListener("abort", () => request.abort());
    const form = new FormData();
    form.append("file", file, options.fileName ?? (file instanceof File ? file.name : "package"));
    request.send(form);
  });
}

export function describe(error: unknown): string {
  if (error instanceof ApiError) return `${error.message} (${error.code})`;
  if (error instanceof Error) return error.message;
  return String(error);
}
