"""bayesproxy."""
