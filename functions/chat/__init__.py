"""resilient-chat: the domain code and Lambda handlers of a multi-region chat API."""
