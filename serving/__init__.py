"""Real-time serving: scanner-folder watcher, ingest pipeline, Ray Serve deployments, HTTP API, serve/demo runtime.

Only serving/deployments.py imports Ray; everything else here is plain Python, testable without it.
"""
