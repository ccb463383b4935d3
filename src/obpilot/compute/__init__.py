"""The compute catalog: regions, IDCs (each in one region) and host types, which hosts and
zones name."""
