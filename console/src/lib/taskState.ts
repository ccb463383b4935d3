// A task as the console shows it: the full task read once, then patched by the events of
// its SSE stream (task, subtask, log, end). Pure, so it is unit-tested without a browser.

import type { Subtask, SubtaskStatus, Task, TaskStatus } from "./types";

export interface LogLine {
  id: number;
  runTime: number;
  line: string;
}

export interface TaskView {
  task: Task;
  logs: ReadonlyMap<number, readonly LogLine[]>;
  lastLogId: number;
  ended: boolean;
  /** Bumped by every batch of events. */
  version: number;
}

export type StreamEvent =
  | { type: "task"; data: TaskEventData }
  | { type: "subtask"; data: SubtaskEventData }
  | { type: "log"; id: number; data: LogEventData }
  | { type: "end"; data: TaskEventData };

export interface TaskEventData {
  id: number;
  name: string;
  status: TaskStatus;
  operation: string;
  subtasks?: SubtaskEventData[];
}

export interface SubtaskEventData {
  id: number;
  name?: string;
  status: SubtaskStatus;
  operation: string;
  runTime?: number;
  executor?: string | null;
  parallelIdx?: number;
  errorMessage?: string | null;
}

export interface LogEventData {
  subtaskId: number;
  runTime: number;
  line: string;
}

const TERMINAL = new Set<SubtaskStatus>(["SUCCESSFUL", "FAILED"]);

export function initialView(task: Task): TaskView {
  return { task, logs: new Map(), lastLogId: 0, ended: false, version: 0 };
}

function patchSubtask(old: Subtask, data: SubtaskEventData, now: string): Subtask {
  const next: Subtask = {
    ...old,
    status: data.status,
    operation: data.operation,
    runTime: data.runTime ?? old.runTime,
    executor: data.executor === undefined ? old.executor : data.executor,
    errorMessage: data.errorMessage === undefined ? old.errorMessage : data.errorMessage,
  };
  const started = data.status === "RUNNING" && (old.status !== "RUNNING" || (data.runTime ?? 0) !== (old.runTime ?? 0));
  if (started) {
    next.startTime = now;
    next.finishTime = null;
  }
  if (TERMINAL.has(data.status) && !TERMINAL.has(old.status)) {
    next.finishTime = now;
    next.startTime = next.startTime ?? now;
  }
  if (data.status === "PENDING" || data.status === "READY") next.finishTime = null;
  return next;
}

/** Applies a batch of events at once: one new view (and one render) per batch. */
export function applyEvents(view: TaskView, events: readonly StreamEvent[], now: string): TaskView {
  if (events.length === 0) return view;
  let task = view.task;
  let changed: Map<number, SubtaskEventData> | undefined;
  let logs: Map<number, LogLine[]> | undefined;
  let lastLogId = view.lastLogId;
  let ended = view.ended;
  for (const event of events) {
    switch (event.type) {
      case "task":
      case "end": {
        task = { ...task, name: event.data.name, status: event.data.status, operation: event.data.operation };
        if (event.data.subtasks) {
          changed ??= new Map();
          for (const s of event.data.subtasks) changed.set(s.id, s);
        }
        if (event.type === "end") ended = true;
        break;
      }
      case "subtask": {
        changed ??= new Map();
        changed.set(event.data.id, event.data);
        break;
      }
      case "log": {
        if (event.id <= lastLogId) break; // a replay after a reconnection
        lastLogId = event.id;
        logs ??= new Map(view.logs as Map<number, LogLine[]>);
        const old = logs.get(event.data.subtaskId);
        const line = { id: event.id, runTime: event.data.runTime, line: event.data.line };
        // Copy once per subtask per batch, then append in place.
        if (old === undefined || old === view.logs.get(event.data.subtaskId)) {
          logs.set(event.data.subtaskId, [...(old ?? []), line]);
        } else old.push(line);
        break;
      }
    }
  }
  if (changed) {
    const updates = changed;
    task = {
      ...task,
      subtasks: task.subtasks.map((s) => {
        const data = updates.get(s.id);
        if (!data) return s;
        if (data.status === s.status && data.operation === s.operation && (data.runTime ?? s.runTime) === s.runTime) {
          return data.errorMessage !== undefined && data.errorMessage !== s.errorMessage
            ? { ...s, errorMessage: data.errorMessage }
            : s;
        }
        return patchSubtask(s, data, now);
      }),
    };
  }
  return { task, logs: logs ?? view.logs, lastLogId, ended, version: view.version + 1 };
}

/** What the API allows on a task and its subtasks (engine/transitions.py). */
export function taskActions(task: Task): { retry: boolean; rollback: boolean; rollbackReason?: string } {
  if (task.status !== "FAILED") return { retry: false, rollback: false };
  if (task.prohibitRollback) {
    return { retry: true, rollback: false, rollbackReason: "This task's steps cannot be rolled back" };
  }
  return { retry: true, rollback: true };
}

export function subtaskActions(subtask: Subtask): { retry: boolean; skip: boolean; cancel: boolean } {
  return {
    retry: subtask.status === "FAILED",
    skip: subtask.status === "FAILED",
    cancel: subtask.status === "RUNNING",
  };
}

export function parseEvent(type: string, data: string, lastEventId: string): StreamEvent | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(data);
  } catch {
    return undefined;
  }
  if (type === "task" || type === "end") return { type, data: parsed as TaskEventData };
  if (type === "subtask") return { type, data: parsed as SubtaskEventData };
  if (type === "log") return { type, id: Number(lastEventId) || 0, data: parsed as LogEventData };
  return undefined;
}
