import { describe, expect, it } from "vitest";
import { cookie } from "./api";
import { countMatches, duration, highlight, runsOf } from "./log";
import { busyReason, stateReason } from "./operations";
import { can } from "./permissions";
import { match, withQuery } from "./router";

describe("log helpers", () => {
  it("highlights matches case-insensitively", () => {
    expect(highlight("Stop observer STOP", "stop")).toEqual([
      { text: "Stop", match: true },
      { text: " observer ", match: false },
      { text: "STOP", match: true },
    ]);
    expect(countMatches([{ id: 1, runTime: 1, line: "a stop; stop" }], "STOP")).toBe(2);
  });

  it("splits runs and formats durations", () => {
    expect(runsOf([{ id: 1, runTime: 2, line: "" }, { id: 2, runTime: 1, line: "" }])).toEqual([1, 2]);
    expect(duration("2026-01-01T00:00:00Z", "2026-01-01T00:00:02.5Z")).toBe("2.5 s");
    expect(duration("2026-01-01T00:00:00Z", "2026-01-01T00:02:05Z")).toBe("2 min 5 s");
  });
});

describe("permissions", () => {
  it("matches OCP expressions", () => {
    expect(can(["**"], "CLUSTER", 1, "UPDATE")).toBe(true);
    expect(can(["CLUSTER:*:READ"], "CLUSTER", 1, "UPDATE")).toBe(false);
    expect(can(["CLUSTER:3:*"], "CLUSTER", 3, "UPDATE")).toBe(true);
    expect(can(["CLUSTER:3:UPDATE"], "CLUSTER", 4, "UPDATE")).toBe(false);
    expect(can(["CLUSTER:*:TENANT:*:READ"], "CLUSTER", 1, "READ")).toBe(false);
  });
});

describe("operations", () => {
  it("says why an operation is not available", () => {
    expect(stateReason("stop", "cluster demo", "RUNNING")).toBeUndefined();
    expect(stateReason("start", "cluster demo", "RUNNING")).toMatch(/cluster demo is RUNNING/);
    expect(busyReason({ id: 3, name: "Stop OB cluster", status: "RUNNING", operation: "EXECUTE", subtasks: [] })).toMatch(/#3/);
    expect(busyReason({ id: 3, name: "x", status: "SUCCESSFUL", operation: "EXECUTE", subtasks: [] })).toBeUndefined();
  });
});

describe("router and cookies", () => {
  it("matches paths and edits queries", () => {
    expect(match("/tasks/:id", "/tasks/7")).toEqual({ id: "7" });
    expect(match("/tasks/:id", "/clusters/7")).toBeUndefined();
    expect(withQuery("/tasks/7", new URLSearchParams("view=flow&subtask=3"), { view: "log", subtask: undefined })).toBe("/tasks/7?view=log");
  });

  it("reads a cookie", () => {
    expect(cookie("obpilot_csrf", "a=1; obpilot_csrf=x%3Dy")).toBe("x=y");
    expect(cookie("nope", "a=1")).toBeUndefined();
  });
});
