"""Inventory: hosts, and the clusters, zones and servers that run on them. `state` holds
the rules (pure), `repository` the SQL, `service` applies the rules and is the only
writer of these tables (the cluster operation lock included); `routes` is HTTP only."""
