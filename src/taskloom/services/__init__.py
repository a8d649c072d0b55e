"""The services: what the platform does, above the job engine, the vector index, the models
and the store, beneath the HTTP routes and the job kinds (see docs/architecture.md)."""
