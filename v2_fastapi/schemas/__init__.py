"""Pydantic models of the v2 API: what requests may carry and what responses hold."""
