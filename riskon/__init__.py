"""riskon drives the feeds and strategies: configs, runs, sweeps, results, reports and the CLI."""

__version__ = "0.1.0"
