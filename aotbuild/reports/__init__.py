"""Reports: the JUnit test report and the remote-cache summary."""
