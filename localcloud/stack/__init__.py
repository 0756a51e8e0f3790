"""The local stack's own machinery, above the services it plays: the command line, the supervisor,
a region's process and the front door."""
