"""Software packages: the server software obpilot installs (the pylibseekdb wheel, seekdb
and OceanBase CE RPMs), uploaded once, kept under obpilot's home, read for what they are."""
