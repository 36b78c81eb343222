"""The journey language: pydantic models, the shipped journeys (*.yaml) and validation."""
