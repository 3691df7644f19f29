"""The shared test harness: inputs and data (data.py), independent references (references.py),
the command line in-process (cli.py) and the invariance matrix (tester.py)."""
