"""Hosts and the server processes on them: how to run a command on a host (locally or
over SSH; `executor`, `local`, `ssh`, `access`) and how to drive a kind of server there
(`drivers`). No FastAPI and no metadb here: callers pass plain values in."""
