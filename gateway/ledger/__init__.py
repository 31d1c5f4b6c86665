"""The route ledger: which implementation serves each legacy route, and how it moves."""
