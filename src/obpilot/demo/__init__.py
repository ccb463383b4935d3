"""`obpilot demo`: a cluster of real seekdb servers on this machine, taken over and served
by obpilot, as a user would do it.

`up` starts (or finds running) the seekdb servers of the demo under OBPILOT_HOME/demo/,
serves the API in this process, and then works through that API over HTTP like any
client: it adds the LOCAL host, takes the cluster over, waits for the task, and prints how
to log in and what to try. `down` stops the servers (by the process driver, by pid),
forgets the cluster and removes the demo's files.

Files under OBPILOT_HOME/demo/: `state.json` (the servers: zone, SQL port, base dir; a
rerun reuses them), `servers/<zone>-<n>/` (their base dirs), and `admin-password` (mode
0600; the admin password the demo gives the instance when OBPILOT_ADMIN_PASSWORD is not
set, so that every run prints the same one)."""
