"""Audiences: a rule language over profiles and behaviour, compiled to SQL."""
