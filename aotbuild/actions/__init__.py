"""Actions: the only code that imports torch; each runs as one ninja edge."""
