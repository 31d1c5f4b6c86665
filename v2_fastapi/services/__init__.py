"""Database work behind the routes, one module per resource, keyword-only arguments.

Plain sync functions of a `Connection` (reads) or a `Session` (writes), each one unit of
work that a route hands to `v2_fastapi.database.Database`.
"""
