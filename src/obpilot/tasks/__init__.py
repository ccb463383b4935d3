"""Task center: OCP's task-management API over the task engine, and a task's event stream."""
