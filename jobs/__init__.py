"""jobs: units of work that compose the remote and local sides (crawl, export)."""
