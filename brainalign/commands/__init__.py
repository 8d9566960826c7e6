"""CLI commands that live in their own modules; each imports heavy libraries only when run."""
