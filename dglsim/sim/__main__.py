import sys

from dglsim.sim.cli import main

if __name__ == "__main__":
    sys.exit(main())
