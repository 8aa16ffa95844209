"""`python -m pyscan` runs the command line."""

from pyscan.cli import main

if __name__ == "__main__":
    main()
