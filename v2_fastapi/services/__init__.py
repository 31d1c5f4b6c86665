"""Database work behind the routes, one module per resource, keyword-only arguments."""
