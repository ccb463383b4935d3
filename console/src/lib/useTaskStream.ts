// Follows one task live: reads it once (GET), then its SSE stream patches it. EventSource
// reconnects by itself and sends Last-Event-ID (each log line carries its id), so a drop
// resumes where it was; the stream is closed on `end`. No timer polls while it is open.

import { useCallback, useEffect, useRef, useState } from "react";
import { api, ApiError, describe } from "./api";
import { applyEvents, initialView, parseEvent, type StreamEvent, type TaskView } from "./taskState";
import type { Task } from "./types";

export type StreamState = "loading" | "live" | "reconnecting" | "ended" | "failed";

interface Metrics {
  batches: { events: number; receivedAt: number; paintedAt: number }[];
}

declare global {
  interface Window {
    __obpilotMetrics?: Metrics;
  }
}

function metrics(): Metrics {
  window.__obpilotMetrics ??= { batches: [] };
  return window.__obpilotMetrics;
}

export function useTaskStream(taskId: number | undefined): {
  view: TaskView | undefined;
  state: StreamState;
  error: string | undefined;
  reload: () => void;
} {
  const [view, setView] = useState<TaskView>();
  const [state, setState] = useState<StreamState>("loading");
  const [error, setError] = useState<string>();
  const [generation, setGeneration] = useState(0);
  const pending = useRef<{ events: StreamEvent[]; receivedAt: number } | undefined>(undefined);
  const frame = useRef<number | undefined>(undefined);

  const reload = useCallback(() => setGeneration((g) => g + 1), []);

  useEffect(() => {
    if (taskId === undefined) return;
    let source: EventSource | undefined;
    let live = true;
    const controller = new AbortController();

    const flush = (): void => {
      frame.current = undefined;
      const batch = pending.current;
      pending.current = undefined;
      if (!batch || !live) return;
      const now = new Date().toISOString();
      setView((current) => (current ? applyEvents(current, batch.events, now) : current));
      // The frame after this one is painted with the batch applied.
      requestAnimationFrame(() =>
        setTimeout(() => metrics().batches.push({ events: batch.events.length, receivedAt: batch.receivedAt, paintedAt: performance.now() }), 0),
      );
    };

    const receive = (type: string) => (message: MessageEvent<string>) => {
      const event = parseEvent(type, message.data, message.lastEventId);
      if (!event) return;
      if (!pending.current) pending.current = { events: [], receivedAt: performance.now() };
      pending.current.events.push(event);
      if (type === "end") {
        source?.close();
        setState("ended");
        flush();
        // The final times of each step come from the full task.
        api<Task>(`/api/v2/tasks/instances/${taskId}`, { signal: controller.signal })
          .then((task) => live && setView((current) => (current ? { ...current, task, version: current.version + 1 } : current)))
          .catch(() => undefined);
        return;
      }
      frame.current ??= requestAnimationFrame(flush);
    };

    api<Task>(`/api/v2/tasks/instances/${taskId}`, { signal: controller.signal })
      .then((task) => {
        if (!live) return;
        setView((current) => (current && current.task.id === task.id ? { ...current, task, ended: false, version: current.version + 1 } : initialView(task)));
        source = new EventSource(`/api/v2/tasks/instances/${taskId}/stream`);
        setState("live");
        for (const type of ["task", "subtask", "log", "end"]) source.addEventListener(type, receive(type) as EventListener);
        source.addEventListener("open", () => live && setState((s) => (s === "ended" ? s : "live")));
        source.addEventListener("error", (event) => {
          if (!live || !source) return;
          if (event instanceof MessageEvent && typeof event.data === "string") {
            // The server's own `error` event (a stream cap): stop and say so.
            source.close();
            try {
              const body = JSON.parse(event.data) as { message: string; code: string };
              setError(`${body.message} (${body.code})`);
            } catch {
              setError(event.data);
            }
            setState("failed");
            return;
          }
          if (source.readyState === EventSource.CLOSED) {
            setState("failed");
            setError("The task's live stream was refused; reload to try again");
            // An expired session is the likely cause: this read sends the user to the login
            // page (and back) if so.
            void api("/api/v2/iam/users/me").catch(() => undefined);
          } else setState((s) => (s === "ended" ? s : "reconnecting"));
        });
      })
      .catch((failure: unknown) => {
        if (!live || (failure instanceof DOMException && failure.name === "AbortError")) return;
        setState("failed");
        setError(failure instanceof ApiError ? describe(failure) : String(failure));
      });

    return () => {
      live = false;
      controller.abort();
      source?.close();
      if (frame.current !== undefined) cancelAnimationFrame(frame.current);
      frame.current = undefined;
      pending.current = undefined;
    };
  }, [taskId, generation]);

  return { view: view && view.task.id === taskId ? view : undefined, state, error, reload };
}
