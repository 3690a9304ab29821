"""The HTTP API (``loyalty-engine serve``): FastAPI on uvicorn, over the same service functions
as the CLI. ``core.http.registry`` lets packages add their routers without importing FastAPI
at start-up; ``core.http.app.create_app`` builds the application."""
