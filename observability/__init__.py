"""Running it in production: metrics, health checks and structured logs."""
