"""harvester: the remote side (MediaWiki Action API client, polite budget, walkers, CLI)."""

__version__ = "0.1.0"
