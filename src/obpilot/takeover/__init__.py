"""Cluster takeover (`POST /api/v2/ob/clusters/takeOver`) and forgetting a cluster
(`DELETE /api/v2/ob/clusters/{id}?keepProcesses=true`). The task itself is in
`obpilot.flows.takeover`."""
