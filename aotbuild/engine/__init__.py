"""Running a build: locks, leases, signals, ninja passes and output checks around one `build`."""
