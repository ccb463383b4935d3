import { useMemo, useRef, useState } from "react";
import { ConfirmDialog, type ConfirmRequest } from "../components/ConfirmDialog";
import { api, describe, upload } from "../lib/api";
import { formatSize, itemsOf } from "../lib/lifecycle";
import { can } from "../lib/permissions";
import { useFetch } from "../lib/useFetch";
import { useTitle } from "../lib/useTitle";
import type { Me, Page, SoftwarePackage } from "../lib/types";

interface Progress {
  name: string;
  sent: number;
  total: number;
}

function Upload({ onUploaded }: { onUploaded: (pkg: SoftwarePackage) => void }) {
  const input = useRef<HTMLInputElement>(null);
  const [file, setFile] = useState<File>();
  const [progress, setProgress] = useState<Progress>();
  const [error, setError] = useState<string>();
  const [done, setDone] = useState<string>();
  const controller = useRef<AbortController | undefined>(undefined);

  async function send(): Promise<void> {
    if (!file) return;
    const abort = new AbortController();
    controller.current = abort;
    setError(undefined);
    setDone(undefined);
    setProgress({ name: file.name, sent: 0, total: file.size });
    try {
      const pkg = await upload<SoftwarePackage>("/api/v2/software-packages", file, {
        signal: abort.signal,
        onProgress: (sent, total) => setProgress({ name: file.name, sent, total }),
      });
      setDone(`Uploaded ${pkg.fileName ?? file.name}`);
      setFile(undefined);
      if (input.current) input.current.value = "";
      onUploaded(pkg);
    } catch (failure) {
      setError(failure instanceof DOMException && failure.name === "AbortError" ? "Upload cancelled" : describe(failure));
    } finally {
      controller.current = undefined;
      setProgress(undefined);
    }
  }

  const percent = progress && progress.total > 0 ? Math.floor((progress.sent / progress.total) * 100) : 0;
  return (
    <form
      className="card upload"
      aria-labelledby="upload-title"
      onSubmit={(event) => {
        event.preventDefault();
        if (!progress) void send();
      }}
    >
      <h2 id="upload-title">Upload a package</h2>
      <p className="muted">An oceanbase-ce or seekdb RPM, or a pylibseekdb wheel: obpilot reads its name, version and architecture from the file.</p>
      <div className="upload-row">
        <label htmlFor="package-file" className="sr-only">
          Package file
        </label>
        <input
          id="package-file"
          ref={input}
          type="file"
          accept=".rpm,.deb,.whl"
          className="input"
          disabled={progress !== undefined}
          onChange={(event) => setFile(event.target.files?.[0])}
        />
        <button type="submit" className="button primary" disabled={!file || progress !== undefined}>
          Upload
        </button>
        {progress && (
          <button type="button" className="button" onClick={() => controller.current?.abort()}>
            Cancel upload
          </button>
        )}
      </div>
      {progress && (
        <div className="upload-progress" aria-live="polite">
          <progress max={100} value={percent} aria-label={`Upload of ${progress.name}`} />
          <span>
            {percent}% · {formatSize(progress.sent)} of {formatSize(progress.total)}
            {percent === 100 ? " · obpilot is checking the package…" : ""}
          </span>
        </div>
      )}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {done && (
        <p className="done" role="status">
          {done}
        </p>
      )}
    </form>
  );
}

export function Packages({ me }: { me: Me }) {
  useTitle("Packages");
  const canRead = can(me.permissions, "PACKAGE", "*", "READ");
  const { data, error, loading, reload } = useFetch<Page<SoftwarePackage>>(canRead ? "/api/v2/software-packages?size=2000" : undefined);
  const packages = useMemo(() => itemsOf(data), [data]);
  const [dialog, setDialog] = useState<ConfirmRequest>();
  const canCreate = can(me.permissions, "PACKAGE", "*", "CREATE");
  const canDelete = can(me.permissions, "PACKAGE", "*", "DELETE");

  if (!canRead) {
    return (
      <section>
        <h1>Packages</h1>
        <p className="muted">Software packages need PACKAGE:*:READ.</p>
      </section>
    );
  }

  function askDelete(pkg: SoftwarePackage): void {
    setDialog({
      title: `Delete package ${pkg.fileName}?`,
      action: "Delete package",
      danger: true,
      body: <p>This removes {pkg.fileName} and its file from obpilot; clusters cannot be created from it any more.</p>,
      run: async () => {
        await api(`/api/v2/software-packages/${pkg.id}`, { method: "DELETE" });
        reload();
        return undefined;
      },
    });
  }

  return (
    <section>
      <div className="page-head">
        <h1>Packages</h1>
        <button type="button" className="button" onClick={reload}>
          Refresh
        </button>
      </div>
      {canCreate && <Upload onUploaded={reload} />}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {loading && !data && <p className="muted">Loading…</p>}
      {data && packages.length === 0 && <p className="muted">No package yet.</p>}
      {packages.length > 0 && (
        <div className="table-wrap">
          <table className="table stack">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">File</th>
                <th scope="col">Version</th>
                <th scope="col">Architecture</th>
                <th scope="col">Size</th>
                <th scope="col">SHA-1</th>
                {canDelete && <th scope="col">Actions</th>}
              </tr>
            </thead>
            <tbody>
              {packages.map((pkg) => {
                const why = pkg.deletable === false ? "A cluster uses this package" : undefined;
                return (
                  <tr key={pkg.id} data-package={pkg.id}>
                    <td data-label="Name">{pkg.name}</td>
                    <td data-label="File">{pkg.fileName}</td>
                    <td data-label="Version">{pkg.version}</td>
                    <td data-label="Architecture">{pkg.architecture}</td>
                    <td data-label="Size">{formatSize(pkg.size)}</td>
                    <td data-label="SHA-1">
                      <code title={pkg.sha1}>{pkg.sha1 ? pkg.sha1.slice(0, 12) : "—"}</code>
                    </td>
                    {canDelete && (
                      <td data-label="Actions">
                        <button
                          type="button"
                          className="button small danger-outline"
                          aria-disabled={why !== undefined}
                          title={why}
                          onClick={() => why === undefined && askDelete(pkg)}
                          data-action="package-delete"
                        >
                          Delete
                          <span className="sr-only">
                            {" "}
                            {pkg.fileName}
                            {why ? ` (unavailable: ${why})` : ""}
                          </span>
                        </button>
                      </td>
                    )}
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      {dialog && <ConfirmDialog request={dialog} onClose={() => setDialog(undefined)} />}
    </section>
  );
}
