"""Runtime: composes devices, sorting and sync into the running agent."""
