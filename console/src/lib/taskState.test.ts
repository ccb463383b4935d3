import { describe, expect, it } from "vitest";
import { stopDag } from "./fixtures";
import { applyEvents, initialView, parseEvent, subtaskActions, taskActions } from "./taskState";
import type { Task } from "./types";

function task(): Task {
  return { id: 7, name: "Stop OB cluster", status: "RUNNING", operation: "EXECUTE", subtasks: stopDag(1, 1) };
}

describe("applyEvents", () => {
  it("patches subtasks, appends log lines and ends", () => {
    let view = initialView(task());
    view = applyEvents(
      view,
      [
        { type: "subtask", data: { id: 1, status: "RUNNING", operation: "EXECUTE", runTime: 1 } },
        { type: "log", id: 10, data: { subtaskId: 1, runTime: 1, line: "a" } },
        { type: "log", id: 11, data: { subtaskId: 1, runTime: 1, line: "b" } },
      ],
      "2026-11-30T10:00:00Z",
    );
    expect(view.task.subtasks[0]?.status).toBe("RUNNING");
    expect(view.task.subtasks[0]?.startTime).toBe("2026-11-30T10:00:00Z");
    expect(view.logs.get(1)?.map((l) => l.line)).toEqual(["a", "b"]);
    const before = view.logs.get(1);
    view = applyEvents(
      view,
      [
        { type: "log", id: 11, data: { subtaskId: 1, runTime: 1, line: "b" } }, // a replay
        { type: "log", id: 12, data: { subtaskId: 1, runTime: 1, line: "c" } },
        { type: "subtask", data: { id: 1, status: "SUCCESSFUL", operation: "EXECUTE", runTime: 1 } },
        { type: "end", data: { id: 7, name: "Stop OB cluster", status: "SUCCESSFUL", operation: "EXECUTE" } },
      ],
      "2026-11-30T10:00:02Z",
    );
    expect(before?.map((l) => l.line)).toEqual(["a", "b"]); // the old view is unchanged
    expect(view.logs.get(1)?.map((l) => l.line)).toEqual(["a", "b", "c"]);
    expect(view.lastLogId).toBe(12);
    expect(view.task.subtasks[0]).toMatchObject({ status: "SUCCESSFUL", finishTime: "2026-11-30T10:00:02Z" });
    expect(view.task.status).toBe("SUCCESSFUL");
    expect(view.ended).toBe(true);
  });

  it("keeps unchanged subtasks identical (memoised nodes do not re-render)", () => {
    const view = initialView(task());
    const next = applyEvents(view, [{ type: "subtask", data: { id: 2, status: "READY", operation: "EXECUTE", runTime: 0 } }], "t");
    expect(next.task.subtasks[0]).toBe(view.task.subtasks[0]);
    expect(next.task.subtasks[1]).not.toBe(view.task.subtasks[1]);
  });
});

describe("actions", () => {
  it("offers exactly what the API allows", () => {
    const t = task();
    expect(taskActions(t)).toEqual({ retry: false, rollback: false });
    expect(taskActions({ ...t, status: "FAILED" })).toEqual({ retry: true, rollback: true });
    expect(taskActions({ ...t, status: "FAILED", prohibitRollback: true }).rollback).toBe(false);
    const s = t.subtasks[0];
    if (!s) throw new Error("no subtask");
    expect(subtaskActions({ ...s, status: "FAILED" })).toEqual({ retry: true, skip: true, cancel: false });
    expect(subtaskActions({ ...s, status: "RUNNING" })).toEqual({ retry: false, skip: false, cancel: true });
    expect(subtaskActions({ ...s, status: "SUCCESSFUL" })).toEqual({ retry: false, skip: false, cancel: false });
  });
});

describe("parseEvent", () => {
  it("reads SSE events and the log line's id", () => {
    expect(parseEvent("log", '{"subtaskId":3,"runTime":1,"line":"x"}', "42")).toEqual({
      type: "log",
      id: 42,
      data: { subtaskId: 3, runTime: 1, line: "x" },
    });
    expect(parseEvent("subtask", "not json", "")).toBeUndefined();
    expect(parseEvent("other", "{}", "")).toBeUndefined();
  });
});
