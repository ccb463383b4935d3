// The timeline: a Gantt chart of the subtasks' start and finish times, so that a person
// sees where the time went.

import { useMemo } from "react";
import { duration } from "../lib/log";
import type { Subtask } from "../lib/types";
import { statusIcon, tone } from "./Status";

export function Timeline({ subtasks, onSelect, selected }: { subtasks: readonly Subtask[]; onSelect: (id: number) => void; selected: number | undefined }) {
  const rows = useMemo(() => {
    const started = subtasks.filter((s) => s.startTime).sort((a, b) => Date.parse(a.startTime ?? "") - Date.parse(b.startTime ?? "") || a.id - b.id);
    return started;
  }, [subtasks]);
  const now = Date.now();
  const begin = rows.length ? Math.min(...rows.map((s) => Date.parse(s.startTime ?? ""))) : now;
  const end = rows.length ? Math.max(...rows.map((s) => (s.finishTime ? Date.parse(s.finishTime) : now))) : now;
  const span = Math.max(1, end - begin);
  const notRun = subtasks.length - rows.length;

  return (
    <div className="timeline" role="region" aria-label="Timeline">
      <div className="timeline-axis" aria-hidden="true">
        {[0, 0.25, 0.5, 0.75, 1].map((f) => (
          <span key={f} style={{ left: `${f * 100}%` }}>
            {((span * f) / 1000).toFixed(1)} s
          </span>
        ))}
      </div>
      <ul className="timeline-rows">
        {rows.map((s) => {
          const start = Date.parse(s.startTime ?? "");
          const finish = s.finishTime ? Date.parse(s.finishTime) : now;
          const left = ((start - begin) / span) * 100;
          const width = Math.max(0.4, ((finish - start) / span) * 100);
          return (
            <li key={s.id}>
              <button type="button" className={`timeline-row${selected === s.id ? " selected" : ""}`} onClick={() => onSelect(s.id)}>
                <span className="timeline-label">
                  <span aria-hidden="true">{statusIcon(s.status)}</span> {s.name} <span className="muted">#{s.id}</span>
                </span>
                <span className="timeline-track">
                  <span className={`timeline-bar tone-${s.status === "RUNNING" ? "busy" : tone(s.status)}`} style={{ left: `${left}%`, width: `${width}%` }} />
                </span>
                <span className="timeline-dur">
                  {duration(s.startTime, s.finishTime, now)} <span className="sr-only">{s.status}</span>
                </span>
              </button>
            </li>
          );
        })}
      </ul>
      {notRun > 0 && <p className="muted">{notRun} subtask(s) have not run yet.</p>}
    </div>
  );
}
