"""What both stacks share: settings, the schema and its migrations, tokens and passwords, money.

Neither `legacy_flask` nor `v2_fastapi` owns the database: two copies of a table
definition drift, one cannot.
"""
