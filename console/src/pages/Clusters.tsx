import { Link } from "../components/Link";
import { StatusBadge } from "../components/Status";
import { versionText } from "../lib/lifecycle";
import { can } from "../lib/permissions";
import { useFetch } from "../lib/useFetch";
import { useTitle } from "../lib/useTitle";
import type { Cluster, Me, Page } from "../lib/types";

export function Clusters({ me }: { me: Me }) {
  const { data, error, loading, reload } = useFetch<Page<Cluster>>("/api/v2/ob/clusters?size=200");
  useTitle("Clusters");
  const canCreate = can(me.permissions, "CLUSTER", "*", "CREATE");
  return (
    <section>
      <div className="page-head">
        <h1>Clusters</h1>
        <div className="actions">
          {canCreate && (
            <Link to="/clusters/new" className="button primary">
              Create cluster
            </Link>
          )}
          <button type="button" className="button" onClick={reload}>
            Refresh
          </button>
        </div>
      </div>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {loading && !data && <p className="muted">Loading…</p>}
      {data && data.contents.length === 0 && (
        <p className="muted">
          No cluster yet: {canCreate ? <Link to="/clusters/new">create one</Link> : "create one"}, or take one over through the API (POST
          /api/v2/ob/clusters/takeOver).
        </p>
      )}
      {data && data.contents.length > 0 && (
        <div className="table-wrap">
          <table className="table">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Status</th>
                <th scope="col">Zones</th>
                <th scope="col">Servers</th>
                <th scope="col">Version</th>
              </tr>
            </thead>
            <tbody>
              {data.contents.map((cluster) => (
                <tr key={cluster.id}>
                  <td>
                    <Link to={`/clusters/${cluster.id}`}>{cluster.name}</Link>
                  </td>
                  <td>
                    <StatusBadge status={cluster.status} kind="resource" />
                  </td>
                  <td>{cluster.zones.length}</td>
                  <td>{cluster.serverCount}</td>
                  <td>{versionText(cluster)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
