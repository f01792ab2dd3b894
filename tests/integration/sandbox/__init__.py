"""The sandbox over real loopback HTTP, driven by plain requests/http.client."""
