"""Hosts and the server processes on them: how to run a command on a host (locally or
over SSH; `executor`, `local`, `ssh`, `access`), the resident agent that looks and acts on
a host (`agent`, reached through `agent_link`, with its requests and answers typed in
`protocol`), and how to drive a kind of server there (`drivers`). No FastAPI and no
metadb here: callers pass plain values in."""
