"""Activities: classes built with their dependencies (session factory, channels, renderer)."""
