"""The deployment as it runs: docker-compose.yml on a real Docker engine."""
