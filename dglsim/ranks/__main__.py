import sys

from dglsim.allocator import reexec_with_allocator

if __name__ == "__main__":
    reexec_with_allocator(["-m", "dglsim.ranks", *sys.argv[1:]])
    from dglsim.ranks.cli import main

    sys.exit(main())
