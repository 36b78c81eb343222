"""The web console: journeys, audiences, the message ledger, users and reports in a browser."""
