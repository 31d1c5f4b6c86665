"""Load tests: the Locust flows and the side-by-side comparison of `/legacy` and `/v2`."""
