"""Deterministic workflow code: the journey interpreter and its inputs/outputs."""
