"""Settings every layer shares: powertools reads these when the handlers' modules are imported,
as Lambda sets them before the import."""

import os

os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "resilient-chat")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "ResilientChat")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")  # never wait on an instance metadata lookup
