import { useEffect, useMemo, useRef, useState } from "react";
import { ConfirmDialog, type ConfirmRequest, type DialogOption } from "../components/ConfirmDialog";
import { Link } from "../components/Link";
import { StatusBadge } from "../components/Status";
import { api } from "../lib/api";
import { busyReason, firstReason, stateReason, type Operation } from "../lib/operations";
import { can } from "../lib/permissions";
import { useFetch } from "../lib/useFetch";
import { useTitle } from "../lib/useTitle";
import { useTaskStream } from "../lib/useTaskStream";
import type { Cluster, Me, Page, Server, Task, Zone } from "../lib/types";

const LABEL: Record<Operation, string> = { stop: "Stop", start: "Start", restart: "Restart" };

interface Target {
  kind: "cluster" | "zone" | "server";
  label: string;
  path: string;
  status: string;
}

export function ClusterPage({ id, me }: { id: number; me: Me }) {
  const cluster = useFetch<Cluster>(`/api/v2/ob/clusters/${id}`);
  useTitle(cluster.data ? `Cluster ${cluster.data.name}` : undefined);
  const tasks = useFetch<Page<Task>>(`/api/v2/tasks/instances?clusterId=${id}&size=5&sort=id,desc`);
  const latest = tasks.data?.contents[0];
  const running = latest?.status === "RUNNING" ? latest.id : undefined;
  const stream = useTaskStream(running);
  const [dialog, setDialog] = useState<ConfirmRequest>();
  const reloadCluster = cluster.reload;
  const reloadTasks = tasks.reload;

  // The page follows the running task's events: a status step re-reads the cluster (at most
  // once per 300 ms), the task's end re-reads the cluster and its tasks.
  const version = stream.view?.version ?? 0;
  const timer = useRef<number | undefined>(undefined);
  useEffect(() => {
    if (version === 0 || timer.current !== undefined) return;
    timer.current = window.setTimeout(() => {
      timer.current = undefined;
      reloadCluster();
    }, 300);
  }, [version, reloadCluster]);
  useEffect(() => () => window.clearTimeout(timer.current), []);
  const ended = stream.view?.ended ?? false;
  useEffect(() => {
    if (ended) {
      reloadCluster();
      reloadTasks();
    }
  }, [ended, reloadCluster, reloadTasks]);

  const canUpdate = can(me.permissions, "CLUSTER", id, "UPDATE");
  const busy = busyReason(stream.view && !stream.view.ended ? stream.view.task : latest);
  const c = cluster.data;
  const observer = useMemo(() => c?.zones.some((z) => z.servers.some((s) => s.kind === "observer")) ?? false, [c]);

  if (cluster.error && !c) {
    return (
      <p className="error" role="alert">
        {cluster.error}
      </p>
    );
  }
  if (!c) return <p className="muted">Loading…</p>;

  function ask(operation: Operation, target: Target): void {
    if (!c) return;
    const options: DialogOption[] = [];
    if (operation !== "start") options.push({ key: "force", label: "Force: SIGKILL at once, no clean stop", initial: false });
    if (operation !== "start" && observer) options.push({ key: "freezeBeforeStop", label: "Minor freeze before stopping", initial: true });
    const takesDown = operation !== "start";
    setDialog({
      title: `${LABEL[operation]} ${target.label}?`,
      action: `${LABEL[operation]} ${target.kind}`,
      danger: takesDown,
      typeToConfirm: takesDown && target.kind === "cluster" ? c.name : undefined,
      body: (
        <p>
          {operation === "stop" && <>This stops every server process of {target.label}: they stop answering SQL until started again.</>}
          {operation === "start" && <>This starts every server process of {target.label} and waits until they answer SQL.</>}
          {operation === "restart" && (
            <>
              This restarts {target.label}
              {target.kind === "cluster" && c.zones.length >= 3 ? ", zone by zone (rolling)" : ""}.
            </>
          )}
        </p>
      ),
      options,
      run: async (chosen) => {
        const body = operation === "start" ? {} : { force: chosen.force ?? false, freezeBeforeStop: chosen.freezeBeforeStop ?? false };
        const task = await api<Task>(`${target.path}/${operation}`, { method: "POST", body });
        reloadTasks();
        reloadCluster();
        return (
          <p>
            Task #{task.id} {task.name} started. <Link to={`/tasks/${task.id}`}>View task</Link>
          </p>
        );
      },
    });
  }

  function actions(target: Target, extra?: string) {
    if (!canUpdate) return null;
    return (
      <div className="actions" role="group" aria-label={`Actions on ${target.label}`}>
        {(["stop", "start", "restart"] as Operation[]).map((operation) => {
          const reason = firstReason(busy, extra, stateReason(operation, target.label, target.status));
          return (
            <button
              key={operation}
              type="button"
              className={`button small ${operation === "start" ? "" : "danger-outline"}`}
              aria-disabled={reason !== undefined}
              title={reason}
              onClick={() => reason === undefined && ask(operation, target)}
              data-action={`${target.kind}-${operation}`}
            >
              {LABEL[operation]}
              {reason && <span className="sr-only"> (unavailable: {reason})</span>}
            </button>
          );
        })}
      </div>
    );
  }

  const progress = stream.view && !stream.view.ended ? stream.view.task : undefined;
  const done = progress?.subtasks.filter((s) => s.status === "SUCCESSFUL").length ?? 0;
  const total = progress?.subtasks.length ?? 0;
  const clusterTarget: Target = { kind: "cluster", label: `cluster ${c.name}`, path: `/api/v2/ob/clusters/${c.id}`, status: c.status };
  const zoneExtra = c.status === "STOPPED" ? "The cluster is stopped: start the cluster" : undefined;

  return (
    <section>
      <nav aria-label="Breadcrumb" className="crumbs">
        <Link to="/clusters">Clusters</Link> / <span>{c.name}</span>
      </nav>
      <div className="page-head">
        <h1>
          {c.name} <StatusBadge status={c.status} kind="resource" />
        </h1>
        <div className="actions">
          {actions(clusterTarget)}
          <button
            type="button"
            className="button small"
            onClick={() => {
              reloadCluster();
              reloadTasks();
            }}
          >
            Refresh
          </button>
        </div>
      </div>
      {busy && canUpdate && (
        <p className="notice">
          Actions are disabled: {busy}.{" "}
          {latest && <Link to={`/tasks/${latest.id}`}>Open task #{latest.id}</Link>}
        </p>
      )}
      {!canUpdate && <p className="muted">You may look at this cluster; operations need CLUSTER:{c.id}:UPDATE.</p>}
      {progress && (
        <div className="progress-card card" aria-live="polite">
          <div>
            <Link to={`/tasks/${progress.id}?view=flow`}>
              Task #{progress.id} {progress.name}
            </Link>{" "}
            <StatusBadge status={progress.status} />{" "}
            <span className="muted">
              {done}/{total} steps done
            </span>
          </div>
          <progress max={total} value={done} aria-label={`Task #${progress.id} progress`} />
        </div>
      )}
      <dl className="facts">
        <div>
          <dt>Cluster id</dt>
          <dd>{c.obClusterId}</dd>
        </div>
        <div>
          <dt>Version</dt>
          <dd>{c.obVersion ?? "—"}</dd>
        </div>
        <div>
          <dt>Zones</dt>
          <dd>{c.zones.length}</dd>
        </div>
        <div>
          <dt>Servers</dt>
          <dd>{c.serverCount}</dd>
        </div>
      </dl>
      {c.zones.map((zone: Zone) => (
        <div className="card zone" key={zone.id}>
          <div className="zone-head">
            <h2>
              {zone.name} <StatusBadge status={zone.status} kind="resource" />
            </h2>
            {actions({ kind: "zone", label: `zone ${zone.name}`, path: `/api/v2/ob/clusters/${c.id}/zones/${encodeURIComponent(zone.name)}`, status: zone.status }, zoneExtra)}
          </div>
          <div className="table-wrap">
            <table className="table stack">
              <thead>
                <tr>
                  <th scope="col">Server</th>
                  <th scope="col">Status</th>
                  <th scope="col">Kind</th>
                  <th scope="col">Ports</th>
                  <th scope="col">Started</th>
                  <th scope="col">Actions</th>
                </tr>
              </thead>
              <tbody>
                {zone.servers.map((server: Server) => (
                  <tr key={server.id} data-server={server.id}>
                    <td data-label="Server">
                      {server.ip}:{server.sqlPort}
                    </td>
                    <td data-label="Status">
                      <StatusBadge status={server.status} kind="resource" />
                    </td>
                    <td data-label="Kind">{server.kind}</td>
                    <td data-label="Ports">
                      SQL {server.sqlPort}
                      {server.port ? `, RPC ${server.port}` : ""}
                    </td>
                    <td data-label="Started">{server.startTime ? new Date(server.startTime).toLocaleString() : "—"}</td>
                    <td data-label="Actions">
                      {actions(
                        { kind: "server", label: `server ${server.ip}:${server.sqlPort}`, path: `/api/v2/ob/clusters/${c.id}/servers/${server.id}`, status: server.status },
                        zoneExtra,
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </div>
      ))}
      {tasks.data && tasks.data.contents.length > 0 && (
        <div className="card">
          <h2>Recent tasks</h2>
          <ul className="plain">
            {tasks.data.contents.map((task) => (
              <li key={task.id}>
                <Link to={`/tasks/${task.id}`}>
                  #{task.id} {task.name}
                </Link>{" "}
                <StatusBadge status={task.status} />
              </li>
            ))}
          </ul>
          <Link to={`/tasks?clusterId=${c.id}`}>All tasks of {c.name}</Link>
        </div>
      )}
      {dialog && <ConfirmDialog request={dialog} onClose={() => setDialog(undefined)} />}
    </section>
  );
}
