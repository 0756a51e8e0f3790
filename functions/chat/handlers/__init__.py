"""Lambda entry points: each parses its event, calls the domain and shapes the response."""
