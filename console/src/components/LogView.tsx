// The log view: the subtask list on one side, the selected subtask's log on the other,
// tailing live (it follows new lines unless you scroll up), one tab per run, with search.

import { memo, useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState, type ReactNode } from "react";
import { countMatches, highlight, runsOf } from "../lib/log";
import type { LogLine } from "../lib/taskState";
import type { Subtask } from "../lib/types";
import { StatusBadge, statusIcon, tone } from "./Status";

// One row per subtask, memoised: a live event re-renders only the rows whose subtask changed
// (applyEvents keeps unchanged subtasks identical), which matters at 3,000 subtasks.
const Item = memo(function Item({ subtask: s, current, onSelect }: { subtask: Subtask; current: boolean; onSelect: (id: number) => void }) {
  return (
    <li>
      <button
        type="button"
        className={`logview-item tone-${s.status === "RUNNING" ? "busy" : tone(s.status)}`}
        aria-current={current}
        onClick={() => onSelect(s.id)}
      >
        <span aria-hidden="true">{statusIcon(s.status)}</span> {s.name} <span className="muted">#{s.id}</span>
        <span className="sr-only"> {s.status}</span>
      </button>
    </li>
  );
});

interface Props {
  ordered: readonly Subtask[];
  selected: Subtask | undefined;
  lines: readonly LogLine[];
  onSelect: (id: number) => void;
  actions: ReactNode;
  searchRef: React.RefObject<HTMLInputElement | null>;
}

export function LogView({ ordered, selected, lines, onSelect, actions, searchRef }: Props) {
  const [query, setQuery] = useState("");
  const runs = useMemo(() => runsOf(lines), [lines]);
  const [run, setRun] = useState<number>();
  const shownRun = run !== undefined && runs.includes(run) ? run : runs[runs.length - 1];
  const shown = useMemo(() => lines.filter((l) => l.runTime === shownRun), [lines, shownRun]);
  const matches = useMemo(() => countMatches(shown, query), [shown, query]);
  const box = useRef<HTMLDivElement>(null);
  const [follow, setFollow] = useState(true);
  const listRef = useRef<HTMLUListElement>(null);
  const latest = useRef(onSelect);
  useEffect(() => {
    latest.current = onSelect;
  });
  const choose = useCallback((id: number) => latest.current(id), []);

  useEffect(() => setRun(undefined), [selected?.id]);

  useLayoutEffect(() => {
    const element = box.current;
    if (element && follow) element.scrollTop = element.scrollHeight;
  }, [shown, follow]);

  useEffect(() => {
    listRef.current?.querySelector('[aria-current="true"]')?.scrollIntoView({ block: "nearest" });
  }, [selected?.id]);

  return (
    <div className="logview">
      <nav className="logview-list" aria-label="Subtasks">
        <ul ref={listRef}>
          {ordered.map((s) => (
            <Item key={s.id} subtask={s} current={s.id === selected?.id} onSelect={choose} />
          ))}
        </ul>
      </nav>
      <section className="logview-main" aria-label="Log">
        {!selected && <p className="muted">Pick a subtask (j/k move between them).</p>}
        {selected && (
          <>
            <div className="logview-head">
              <h2>
                {selected.name} <span className="muted">#{selected.id}</span> <StatusBadge status={selected.status} />
              </h2>
              {actions}
            </div>
            <div className="logview-tools">
              {runs.length > 0 && (
                <div role="tablist" aria-label="Runs" className="tabs">
                  {runs.map((r) => (
                    <button key={r} type="button" role="tab" aria-selected={r === shownRun} className="tab" onClick={() => setRun(r)}>
                      Run {r}
                    </button>
                  ))}
                </div>
              )}
              <label className="search">
                <span className="sr-only">Search the log</span>
                <input
                  ref={searchRef}
                  id="log-search"
                  className="input"
                  type="search"
                  placeholder="Search the log ( / )"
                  value={query}
                  onChange={(e) => setQuery(e.target.value)}
                />
              </label>
              {query && (
                <span className="muted" role="status">
                  {matches} match{matches === 1 ? "" : "es"}
                </span>
              )}
              <label className="check">
                <input type="checkbox" checked={follow} onChange={(e) => setFollow(e.target.checked)} /> Follow
              </label>
            </div>
            <div
              ref={box}
              className="log"
              tabIndex={0}
              role="log"
              aria-label={`Log of ${selected.name} #${selected.id}`}
              onScroll={(event) => {
                const element = event.currentTarget;
                const atBottom = element.scrollHeight - element.scrollTop - element.clientHeight < 24;
                if (atBottom !== follow) setFollow(atBottom);
              }}
            >
              {shown.length === 0 && <p className="muted">No log lines{selected.status === "PENDING" ? ": the step has not run yet" : ""}.</p>}
              {shown.map((l) => (
                <div key={l.id} className="log-line">
                  {highlight(l.line, query).map((piece, i) => (piece.match ? <mark key={i}>{piece.text}</mark> : <span key={i}>{piece.text}</span>))}
                </div>
              ))}
            </div>
          </>
        )}
      </section>
    </div>
  );
}
