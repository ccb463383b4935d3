"""Adding hosts in a batch: a "Prepare host" task that logs in to each and checks it."""
