"""The `tokenusage` command line: one entry point for building, running and deploying the filter."""
