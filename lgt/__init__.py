"""Pure logic of the LGT data engine. Nothing here imports Dagster (a test enforces it)."""
