"""The console's routes, one module per group: logging in and out, journeys (pages and
actions), and the data pages (audiences, messages, rejected events, users, reports, growth)."""
