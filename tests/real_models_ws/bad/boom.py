"""A module that raises while being imported."""

raise ValueError("boom: this module is broken")
