"""End-to-end tests: real processes (hub, scheduler, nodes, clients) and real models."""
