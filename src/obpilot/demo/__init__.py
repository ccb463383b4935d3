"""`obpilot demo`: a cluster of real seekdb servers on this machine, created and served by
obpilot, as a user would do it.

`up` serves the API in this process and then works through it over HTTP like any client:
it registers the compute catalog, adds this machine as a LOCAL host (Prepare host),
uploads the pylibseekdb wheel as a software package (reusing one with the same sha1),
creates the cluster and follows its task, and prints how to log in and what to try.
`down` deletes the cluster through the API (the serving demo's, or one it serves itself
a moment), stops the serving demo, stops by pid any demo seekdb still running (the
safety net) and removes the demo's files.

Files under OBPILOT_HOME/demo/: `state.json` (the servers: zone, SQL port, home; a rerun
reuses them), `servers/<zone>-<n>/` (their homes), `serving.json` (the serving demo's pid
and URL), and `admin-password` (mode 0600; the admin password the demo gives the instance
when OBPILOT_ADMIN_PASSWORD is not set, so that every run prints the same one; root's
password of the cluster too)."""
