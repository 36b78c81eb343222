"""Entering users into journeys: the enrollment row first, then signal-with-start.

Shared by the ingestion API (events), the sweep activities (audiences) and the simulator, so it
sits above all three and imports only the store, the audiences, the journey language and the
Temporal client.
"""
