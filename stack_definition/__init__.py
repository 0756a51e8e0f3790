"""The stack as template.yaml and samconfig.toml define it (and where a running local stack is):
read for localcloud, scripts, drill and bench alike, and importing none of them. Nothing here reads
a file at import time."""
