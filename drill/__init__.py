"""The failover drill: take a region out, watch what users see, put it back exactly as it was."""
