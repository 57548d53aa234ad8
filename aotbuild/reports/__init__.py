"""Reports: what a build did (remote-cache use included) and the test report."""
