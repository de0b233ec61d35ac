"""Running the pipeline: the check cycle, the daemon, its listener, metrics and logs."""
