"""Local tooling: the demo and the one-command development stack."""
