import { useState } from "react";
import { Link } from "../components/Link";
import { StatusBadge } from "../components/Status";
import { duration } from "../lib/log";
import { navigate, useLocation, withQuery } from "../lib/router";
import { useFetch } from "../lib/useFetch";
import { useTitle } from "../lib/useTitle";
import type { Cluster, Page, Task } from "../lib/types";

const STATUSES = ["", "RUNNING", "FAILED", "SUCCESSFUL"];
const SIZE = 20;

export function Tasks() {
  const { path, query } = useLocation();
  useTitle("Tasks");
  const status = query.get("status") ?? "";
  const name = query.get("name") ?? "";
  const clusterId = query.get("clusterId") ?? "";
  const page = Math.max(1, Number(query.get("page") ?? "1") || 1);
  const [draft, setDraft] = useState(name);
  const api = new URLSearchParams({ page: String(page), size: String(SIZE), sort: "id,desc" });
  if (status) api.set("status", status);
  if (name) api.set("name", name);
  if (clusterId) api.set("clusterId", clusterId);
  const tasks = useFetch<Page<Task>>(`/api/v2/tasks/instances?${api.toString()}`);
  const clusters = useFetch<Page<Cluster>>("/api/v2/ob/clusters?size=200");
  const set = (changes: Record<string, string | undefined>) => navigate(withQuery(path, query, { page: undefined, ...changes }));
  const pages = tasks.data?.page?.totalPages ?? 1;

  return (
    <section>
      <div className="page-head">
        <h1>Tasks</h1>
        <button type="button" className="button" onClick={tasks.reload}>
          Refresh
        </button>
      </div>
      <form
        className="filters"
        role="search"
        onSubmit={(event) => {
          event.preventDefault();
          set({ name: draft.trim() });
        }}
      >
        <label>
          Status
          <select className="input" value={status} onChange={(e) => set({ status: e.target.value })}>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s || "All"}
              </option>
            ))}
          </select>
        </label>
        <label>
          Cluster
          <select className="input" value={clusterId} onChange={(e) => set({ clusterId: e.target.value })}>
            <option value="">All</option>
            {clusters.data?.contents.map((c) => (
              <option key={c.id} value={String(c.id)}>
                {c.name}
              </option>
            ))}
          </select>
        </label>
        <label>
          Name
          <input className="input" type="search" value={draft} onChange={(e) => setDraft(e.target.value)} placeholder="Stop OB cluster" />
        </label>
        <button type="submit" className="button">
          Search
        </button>
      </form>
      {tasks.error && (
        <p className="error" role="alert">
          {tasks.error}
        </p>
      )}
      {tasks.data && tasks.data.contents.length === 0 && <p className="muted">No task matches.</p>}
      {tasks.data && tasks.data.contents.length > 0 && (
        <div className="table-wrap">
          <table className="table">
            <thead>
              <tr>
                <th scope="col">Id</th>
                <th scope="col">Name</th>
                <th scope="col">Cluster</th>
                <th scope="col">Status</th>
                <th scope="col">Progress</th>
                <th scope="col">Creator</th>
                <th scope="col">Started</th>
                <th scope="col">Duration</th>
              </tr>
            </thead>
            <tbody>
              {tasks.data.contents.map((task) => {
                const done = task.subtasks.filter((s) => s.status === "SUCCESSFUL").length;
                return (
                  <tr key={task.id}>
                    <td>{task.id}</td>
                    <td>
                      <Link to={`/tasks/${task.id}`}>{task.name}</Link>
                    </td>
                    <td>{task.cluster?.id ? <Link to={`/clusters/${task.cluster.id}`}>{task.cluster.name}</Link> : "—"}</td>
                    <td>
                      <StatusBadge status={task.status} />
                    </td>
                    <td>
                      {done}/{task.subtasks.length}
                    </td>
                    <td>{task.creator?.name ?? "—"}</td>
                    <td>{task.startTime ? new Date(task.startTime).toLocaleString() : "—"}</td>
                    <td>{duration(task.startTime, task.finishTime)}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      {pages > 1 && (
        <nav className="pager" aria-label="Pages">
          <button type="button" className="button small" disabled={page <= 1} onClick={() => navigate(withQuery(path, query, { page: String(page - 1) }))}>
            Previous
          </button>
          <span>
            Page {page} of {pages}
          </span>
          <button type="button" className="button small" disabled={page >= pages} onClick={() => navigate(withQuery(path, query, { page: String(page + 1) }))}>
            Next
          </button>
        </nav>
      )}
    </section>
  );
}
