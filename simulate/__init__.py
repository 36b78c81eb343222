"""``lifecycle simulate``: journeys run for real over a synthetic population, on a simulated
clock, before they go live."""
