"""A FastAPI app with one `AsyncJourneyClient` for its whole life (docs/recipes/fastapi.md)."""
