"""Where a drilled target runs: ``process`` (a child process), ``docker`` (containers), ``external``."""
