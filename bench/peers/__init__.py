"""Pickup's peers measured the way bench.lateness measures Pickup: ``python -m bench.peers --help``."""
