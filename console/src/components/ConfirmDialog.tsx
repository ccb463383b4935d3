// A confirmation that names what it acts on, offers the API's options and, for the
// operations that take a cluster down, wants the cluster's name typed. A refusal shows the
// API's message and code in place.

import { useEffect, useId, useRef, useState, type ReactNode } from "react";
import { describe } from "../lib/api";
import { nameConfirmed } from "../lib/lifecycle";

export interface DialogOption {
  key: string;
  label: string;
  initial: boolean;
}

export interface ConfirmRequest {
  title: string;
  body: ReactNode;
  action: string;
  danger?: boolean;
  typeToConfirm?: string;
  options?: DialogOption[];
  run: (options: Record<string, boolean>) => Promise<ReactNode | undefined>;
}

export function ConfirmDialog({ request, onClose }: { request: ConfirmRequest; onClose: () => void }) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [typed, setTyped] = useState("");
  const [options, setOptions] = useState<Record<string, boolean>>(() =>
    Object.fromEntries((request.options ?? []).map((o) => [o.key, o.initial])),
  );
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  const [done, setDone] = useState<ReactNode>();
  const titleId = useId();
  const typeId = useId();

  useEffect(() => {
    const element = dialog.current;
    if (element && !element.open) element.showModal();
    return () => element?.close();
  }, []);

  const blocked = request.typeToConfirm !== undefined && !nameConfirmed(typed, request.typeToConfirm);

  async function confirm(): Promise<void> {
    setBusy(true);
    setError(undefined);
    try {
      const result = await request.run(options);
      if (result) setDone(result);
      else onClose();
    } catch (failure) {
      setError(describe(failure));
    } finally {
      setBusy(false);
    }
  }

  return (
    <dialog ref={dialog} className="dialog" aria-labelledby={titleId} onClose={onClose} onCancel={onClose}>
      <form
        method="dialog"
        onSubmit={(event) => {
          event.preventDefault();
          if (!blocked && !busy && !done) void confirm();
        }}
      >
        <h2 id={titleId}>{request.title}</h2>
        <div className="dialog-body">{request.body}</div>
        {!done &&
          (request.options ?? []).map((option) => (
            <label key={option.key} className="check">
              <input
                type="checkbox"
                checked={options[option.key] ?? false}
                onChange={(event) => setOptions({ ...options, [option.key]: event.target.checked })}
              />{" "}
              {option.label}
            </label>
          ))}
        {!done && request.typeToConfirm !== undefined && (
          <p>
            <label htmlFor={typeId}>
              Type <strong>{request.typeToConfirm}</strong> to confirm
            </label>
            <input
              id={typeId}
              className="input"
              autoComplete="off"
              autoFocus
              value={typed}
              onChange={(event) => setTyped(event.target.value)}
            />
          </p>
        )}
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        {done && (
          <div className="done" role="status">
            {done}
          </div>
        )}
        <div className="dialog-buttons">
          <button type="button" className="button" onClick={onClose}>
            {done ? "Close" : "Cancel"}
          </button>
          {!done && (
            <button
              type="submit"
              className={`button ${request.danger ? "danger" : "primary"}`}
              disabled={blocked || busy}
              autoFocus={request.typeToConfirm === undefined}
            >
              {busy ? "Working…" : request.action}
            </button>
          )}
        </div>
      </form>
    </dialog>
  );
}
