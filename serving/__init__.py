"""Real-time serving: scanner-folder watcher, ingest pipeline, /v1 API, health and housekeeping (plain Python), the
`xscreen serve` supervisor (no Ray), and Ray Serve only in deployments.py, runtime.py, worker.py."""
