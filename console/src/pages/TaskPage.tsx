import { useEffect, useMemo, useRef, useState } from "react";
import { ConfirmDialog, type ConfirmRequest } from "../components/ConfirmDialog";
import { FlowView } from "../components/FlowView";
import { Link } from "../components/Link";
import { LogView } from "../components/LogView";
import { StatusBadge } from "../components/Status";
import { Timeline } from "../components/Timeline";
import { api } from "../lib/api";
import { focusTarget, readingOrder } from "../lib/dag";
import { duration } from "../lib/log";
import { can } from "../lib/permissions";
import { navigate, useLocation, withQuery } from "../lib/router";
import { subtaskActions, taskActions } from "../lib/taskState";
import { useTaskStream, type StreamState } from "../lib/useTaskStream";
import { useTitle } from "../lib/useTitle";
import type { Me, Subtask, Task } from "../lib/types";

const VIEWS = ["flow", "log", "timeline"] as const;
type View = (typeof VIEWS)[number];
const STREAM_TEXT: Record<StreamState, string> = {
  loading: "Loading…",
  live: "Live",
  reconnecting: "Reconnecting…",
  ended: "Ended",
  failed: "Not live",
};
const EMPTY: never[] = [];

function typing(target: EventTarget | null): boolean {
  return target instanceof HTMLElement && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
}

export function TaskPage({ id, me }: { id: number; me: Me }) {
  const { view, state, error, reload } = useTaskStream(id);
  const { path, query } = useLocation();
  const current: View = (VIEWS as readonly string[]).includes(query.get("view") ?? "") ? (query.get("view") as View) : "flow";
  const selectedId = Number(query.get("subtask")) || undefined;
  const [dialog, setDialog] = useState<ConfirmRequest>();
  const [focus, setFocus] = useState<{ id: number; seq: number }>();
  const searchRef = useRef<HTMLInputElement>(null);
  const task = view?.task;
  useTitle(task ? `Task #${task.id} ${task.name}` : undefined);
  const subtasks = task?.subtasks ?? EMPTY;
  const ordered = useMemo(() => readingOrder(subtasks), [subtasks]);
  const selected = selectedId === undefined ? undefined : subtasks.find((s) => s.id === selectedId);
  const clusterId = task?.clusterId ?? task?.cluster?.id ?? undefined;
  const mayAct = can(me.permissions, "TASK", "*", "UPDATE") && (clusterId == null || can(me.permissions, "CLUSTER", clusterId, "UPDATE"));

  const go = (changes: Record<string, string | undefined>, replace = true) => navigate(withQuery(path, query, changes), { replace });
  const select = (sid: number) => go({ subtask: String(sid) });
  const target = focusTarget(subtasks);

  function jump(): void {
    if (!target) return;
    select(target.id);
    setFocus((f) => ({ id: target.id, seq: (f?.seq ?? 0) + 1 }));
  }

  // Keyboard: j/k move between subtasks, / searches the log, f jumps to the failure.
  const keys = useRef<(event: KeyboardEvent) => void>(() => undefined);
  keys.current = (event: KeyboardEvent) => {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target) || document.querySelector("dialog[open]")) return;
    if (event.key === "j" || event.key === "k") {
      if (ordered.length === 0) return;
      const at = ordered.findIndex((s) => s.id === selectedId);
      const next = event.key === "j" ? Math.min(ordered.length - 1, at + 1) : Math.max(0, at < 0 ? 0 : at - 1);
      const subtask = ordered[next];
      if (subtask) {
        select(subtask.id);
        setFocus((f) => ({ id: subtask.id, seq: (f?.seq ?? 0) + 1 }));
      }
      event.preventDefault();
    } else if (event.key === "/") {
      event.preventDefault();
      if (current !== "log") go({ view: "log", subtask: String(selectedId ?? target?.id ?? ordered[0]?.id ?? "") }, false);
      setTimeout(() => searchRef.current?.focus(), 0);
    } else if (event.key === "f") {
      jump();
    }
  };
  useEffect(() => {
    const handler = (event: KeyboardEvent) => keys.current(event);
    window.addEventListener("keydown", handler);
    return () => window.removeEventListener("keydown", handler);
  }, []);

  if (!task) {
    return error ? (
      <p className="error" role="alert">
        {error}
      </p>
    ) : (
      <p className="muted">Loading…</p>
    );
  }

  const t: Task = task;
  const done = subtasks.filter((s) => s.status === "SUCCESSFUL").length;
  const allowed = taskActions(t);
  const failed = subtasks.filter((s) => s.status === "FAILED");

  function confirmTask(kind: "retry" | "rollback"): void {
    setDialog({
      title: kind === "retry" ? `Retry task #${t.id}?` : `Roll back task #${t.id}?`,
      action: kind === "retry" ? "Retry" : "Roll back",
      danger: kind === "rollback",
      body:
        kind === "retry" ? (
          <p>
            The {failed.length} failed step(s) of {t.name} run again; the steps that succeeded stay done.
          </p>
        ) : (
          <p>Every step of {t.name} that ran is undone, from the failure back to the first (a stop's rollback starts again the servers it stopped).</p>
        ),
      run: async () => {
        await api(`/api/v2/tasks/instances/${t.id}/${kind}`, { method: "POST" });
        reload();
        return undefined;
      },
    });
  }

  function confirmSubtask(kind: "retry" | "skip" | "cancel", s: Subtask): void {
    const what: Record<typeof kind, string> = {
      retry: `The step ${s.name} #${s.id} is rolled back if it needs it, then runs again (run ${(s.runTime ?? 0) + 1}).`,
      skip: `The step ${s.name} #${s.id} is marked successful without running, and the task goes on with the next steps.`,
      cancel: `The running step ${s.name} #${s.id} is stopped: it becomes FAILED, and the task can then be retried or rolled back.`,
    };
    setDialog({
      title: `${kind[0]?.toUpperCase()}${kind.slice(1)} step #${s.id}?`,
      action: `${kind[0]?.toUpperCase()}${kind.slice(1)} step`,
      danger: kind !== "retry",
      body: <p>{what[kind]}</p>,
      run: async () => {
        await api(`/api/v2/tasks/instances/${t.id}/subtasks/${s.id}/${kind}`, { method: "POST" });
        reload();
        return undefined;
      },
    });
  }

  function subtaskButtons(s: Subtask) {
    if (!mayAct) return null;
    const a = subtaskActions(s);
    if (!a.retry && !a.skip && !a.cancel) return null;
    return (
      <div className="actions" role="group" aria-label={`Actions on step #${s.id}`}>
        {a.retry && (
          <button type="button" className="button small primary" onClick={() => confirmSubtask("retry", s)}>
            Retry step
          </button>
        )}
        {a.skip && (
          <button type="button" className="button small" onClick={() => confirmSubtask("skip", s)}>
            Skip step
          </button>
        )}
        {a.cancel && (
          <button type="button" className="button small danger-outline" onClick={() => confirmSubtask("cancel", s)}>
            Cancel step
          </button>
        )}
      </div>
    );
  }

  const lines = (selected && view?.logs.get(selected.id)) || EMPTY;

  return (
    <section className="taskpage">
      <nav aria-label="Breadcrumb" className="crumbs">
        <Link to="/tasks">Tasks</Link> / <span>#{t.id}</span>
      </nav>
      <div className="page-head">
        <h1>
          #{t.id} {t.name} <StatusBadge status={t.status} />
        </h1>
        <div className="actions">
          {mayAct && allowed.retry && (
            <button type="button" className="button primary" onClick={() => confirmTask("retry")}>
              Retry task
            </button>
          )}
          {mayAct && t.status === "FAILED" && (
            <button
              type="button"
              className="button danger-outline"
              aria-disabled={!allowed.rollback}
              title={allowed.rollbackReason}
              onClick={() => allowed.rollback && confirmTask("rollback")}
            >
              Roll back{allowed.rollbackReason && <span className="sr-only"> (unavailable: {allowed.rollbackReason})</span>}
            </button>
          )}
          {target && target.status !== "PENDING" && (
            <button type="button" className="button" onClick={jump} title="f">
              {target.status === "FAILED" ? "Jump to the failure" : "Jump to the running step"}
            </button>
          )}
        </div>
      </div>
      <p className="task-meta">
        {clusterId != null && (
          <>
            Cluster <Link to={`/clusters/${clusterId}`}>{t.cluster?.name ?? clusterId}</Link> ·{" "}
          </>
        )}
        {done}/{subtasks.length} steps done · {t.creator ? `by ${t.creator.name} · ` : ""}
        {duration(t.startTime, t.finishTime)} ·{" "}
        <span className={`stream stream-${state}`} role="status">
          {STREAM_TEXT[state]}
        </span>
        {error && <span className="error"> {error}</span>}
      </p>
      {t.status === "FAILED" && failed.length > 0 && (
        <div className="failure" role="alert">
          <strong>Failed at {failed.map((s) => `${s.name} #${s.id}`).join(", ")}</strong>
          {failed.slice(0, 3).map((s) => (
            <p key={s.id}>
              {s.errorCode ? `${s.errorCode}: ` : ""}
              {s.errorMessage ?? "no message"}{" "}
              <Link to={withQuery(path, query, { view: "log", subtask: String(s.id) })}>Log</Link>
            </p>
          ))}
        </div>
      )}
      <div role="tablist" aria-label="Views" className="tabs views">
        {VIEWS.map((v) => (
          <button key={v} type="button" role="tab" aria-selected={v === current} className="tab" onClick={() => go({ view: v }, false)}>
            {v[0]?.toUpperCase()}
            {v.slice(1)}
          </button>
        ))}
        <span className="muted hint">j/k: steps · /: search the log · f: jump</span>
      </div>
      <div className="views-body">
        {current === "flow" && (
          <div className="flow-layout">
            <FlowView subtasks={subtasks} selected={selectedId} onSelect={select} focus={focus} />
            {selected && (
              <aside className="panel card" aria-label={`Step #${selected.id}`}>
                <h2>
                  {selected.name} <span className="muted">#{selected.id}</span>
                </h2>
                <StatusBadge status={selected.status} />
                <dl className="facts small">
                  <div>
                    <dt>Operation</dt>
                    <dd>{selected.operation}</dd>
                  </div>
                  <div>
                    <dt>Run</dt>
                    <dd>{selected.runTime ?? 0}</dd>
                  </div>
                  <div>
                    <dt>Executor</dt>
                    <dd>{selected.executor ?? "—"}</dd>
                  </div>
                  <div>
                    <dt>Time</dt>
                    <dd>{duration(selected.startTime, selected.finishTime) || "—"}</dd>
                  </div>
                </dl>
                {selected.errorMessage && <p className="error">{selected.errorMessage}</p>}
                {subtaskButtons(selected)}
                <p>
                  <Link to={withQuery(path, query, { view: "log", subtask: String(selected.id) })}>Open its log</Link>
                </p>
                <button type="button" className="button small" onClick={() => go({ subtask: undefined })}>
                  Close
                </button>
              </aside>
            )}
          </div>
        )}
        {current === "log" && (
          <LogView
            ordered={ordered}
            selected={selected}
            lines={lines}
            onSelect={select}
            actions={selected ? subtaskButtons(selected) : null}
            searchRef={searchRef}
          />
        )}
        {current === "timeline" && <Timeline subtasks={subtasks} onSelect={select} selected={selectedId} />}
      </div>
      {dialog && <ConfirmDialog request={dialog} onClose={() => setDialog(undefined)} />}
    </section>
  );
}
